"""Accuracy of every inference backend × precision against torch fp32, on TRAINED weights.

Random weights put most logits near 0, where any rounding flips the mask; a trained
model's logits are confident. This benchmark therefore first trains the SE-norm U-Net on
synthetic phantoms (once; the checkpoints are kept under ``--work``), then compares each
backend and precision with the exact reference (``--backend torch --precision fp32``).

Stages (each reuses what the previous run left in ``--work``):

``train``
    * ``demo``: the demo's model (:class:`hecktorseg.demo.DemoConfig` defaults: 16 phantoms,
      32³ at 4.5 mm, f = 8, 30 epochs, lr 1e-2 one-cycle, fp32);
    * ``f24``: f = 24 on a 64³ grid at 2.25 mm (bf16 autocast + channels-last training to fit
      the budget of a shared 2-core CPU), ``--f24-epochs`` epochs.
``convergence``
    The demo configuration trained with fp32 and with bf16 autocast + channels-last for 3
    seeds: final / best validation Dice of each (the training-mode check).
``compare``
    For each trained model, each backend × precision: held-out masks against torch fp32
    (per-case Dice, worst case), held-out Dice against the ground truth, with and without TTA.
    Pass ``--json`` to keep the table.

Usage::

    nice -n 5 python benchmarks/accuracy_bench.py train --work .bench-cache/accuracy > train.log 2>&1 &
    python benchmarks/accuracy_bench.py compare --work .bench-cache/accuracy --json accuracy.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from _whole import whole_network

logger = logging.getLogger("accuracy_bench")


def _prepare(
    work: Path, *, n_train: int, n_val: int, n_test: int, size: int, spacing: float, seed: int
) -> Path:
    """Phantoms, preprocessing and a split file under ``work``; returns ``work``."""
    import shutil

    from hecktorseg.data import write_synthetic_dataset
    from hecktorseg.io import write_bbox_table
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

    if (work / "split.json").exists():
        return work
    raw = work / "data" / "raw"
    cases = write_synthetic_dataset(raw, n_cases=n_train + n_test, edition="2020", seed=seed)
    train_cases, test_cases = cases[:n_train], cases[n_train:]
    test_dir = work / "data" / "test"
    for case in test_cases:
        shutil.copytree(case.ct_path.parent, test_dir / case.patient_id, dirs_exist_ok=True)
    write_bbox_table(test_dir / "bbox.csv", {c.patient_id: c.bbox for c in test_cases if c.bbox is not None})
    pre_cfg = PreprocessConfig(spacing=(spacing,) * 3, size=(size,) * 3)
    preprocess_dataset(train_cases, work / "data" / "preprocessed", pre_cfg)
    ids = [c.patient_id for c in train_cases]
    (work / "split.json").write_text(json.dumps([{"train": ids[:-n_val], "val": ids[-n_val:]}], indent=2))
    return work


def _train(work: Path, name: str, *, n_filters: int, epochs: int, lr: float, seed: int, bf16: bool) -> Any:
    from hecktorseg.training import TrainConfig, train

    out = work / name
    if (out / "fold_0" / "best.pt").exists() and (out / "fold_0" / "metrics.csv").exists():
        logger.info("%s: already trained", name)
        return None
    cfg = TrainConfig(
        n_filters=n_filters,
        epochs=epochs,
        lr=lr,
        split="file",
        split_file=str(work / "split.json"),
        seed=seed,
        num_workers=0,
        device="cpu",
        rotation_p=0.0,
        mirror_p=0.5,
        t_0=epochs,
        amp=bf16,
        amp_dtype="bfloat16",
        channels_last=bf16,
        plot=False,
    )
    start = time.perf_counter()
    result = train(work / "data" / "preprocessed", out, cfg, fold=0, force=True)
    last = result.history[-1]
    logger.info(
        "%s: best val Dice %.4f (epoch %d), final %.4f, %.1f min",
        name,
        result.best_dice,
        result.best_epoch,
        last.val_dice,
        (time.perf_counter() - start) / 60,
    )
    return result


def stage_train(args: argparse.Namespace) -> None:
    work = Path(args.work)
    if "demo" in args.models:
        demo = _prepare(work / "demo", n_train=16, n_val=4, n_test=6, size=32, spacing=4.5, seed=0)
        _train(demo, "model", n_filters=8, epochs=30, lr=1e-2, seed=0, bf16=False)
    if "f24" in args.models:
        f24 = _prepare(
            work / "f24", n_train=args.f24_n_train, n_val=4, n_test=6, size=64, spacing=2.25, seed=1
        )
        _train(f24, "model", n_filters=24, epochs=args.f24_epochs, lr=1e-2, seed=0, bf16=True)


def stage_convergence(args: argparse.Namespace) -> None:
    import csv

    work = Path(args.work) / "convergence"
    rows = []
    for seed in args.seeds:
        data = _prepare(work / f"data_{seed}", n_train=16, n_val=4, n_test=1, size=32, spacing=4.5, seed=seed)
        for mode in ("fp32", "bf16"):
            _train(data, f"model_{mode}", n_filters=8, epochs=30, lr=1e-2, seed=seed, bf16=mode == "bf16")
            with (data / f"model_{mode}" / "fold_0" / "metrics.csv").open() as fh:
                hist = list(csv.DictReader(fh))
            vals = [float(r["val_dice"]) for r in hist if r["val_dice"] not in ("", "nan")]
            secs = sum(float(r["seconds"]) for r in hist)
            rows.append({"seed": seed, "mode": mode, "final": vals[-1], "best": max(vals), "seconds": secs})
            print(json.dumps(rows[-1]), flush=True)
    print("\nseed  mode  final   best    train s")
    for r in rows:
        print(f"{r['seed']:>4}  {r['mode']}  {r['final']:.4f}  {r['best']:.4f}  {r['seconds']:.0f}")
    for seed in args.seeds:
        f = {r["mode"]: r for r in rows if r["seed"] == seed}
        print(f"seed {seed}: final bf16 - fp32 = {f['bf16']['final'] - f['fp32']['final']:+.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def _dice(a: Any, b: Any) -> float:
    import numpy as np

    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def _predictor(ckpt: Path, backend: str, precision: str, tta: bool) -> Any:
    """A one-model predictor; ``bf16-whole`` runs the whole network in bf16 (no float32 output layer)."""
    import attrs

    from hecktorseg.inference import Predictor, PredictorConfig
    from hecktorseg.models import load_checkpoint

    cfg = PredictorConfig(backend=backend, precision=precision.removesuffix("-whole"), tta=tta, device="cpu")
    if not precision.endswith("-whole"):
        return Predictor.from_checkpoints([ckpt], config=cfg)
    reference = Predictor.from_checkpoints(
        [ckpt], config=attrs.evolve(cfg, backend="torch", precision="fp32")
    )
    model = load_checkpoint(ckpt).model
    return Predictor([whole_network(model)], cfg, preprocess=reference.preprocess)


def stage_compare(args: argparse.Namespace) -> None:
    import numpy as np
    import SimpleITK as sitk

    from hecktorseg.io import discover_cases

    rows: list[dict[str, Any]] = []
    combos = [tuple(c.split(":")) for c in args.combos]
    for name in args.models:
        work = Path(args.work) / name
        ckpt = work / "model" / "fold_0" / "best.pt"
        cases = discover_cases(work / "data" / "test")
        for tta in (False, True):
            ref: dict[str, Any] = {}
            for backend, precision in [("torch", "fp32"), *combos]:
                try:
                    predictor = _predictor(ckpt, backend, precision, tta)
                except Exception as exc:  # a backend that is not installed
                    print(f"{name} {backend}:{precision}: skipped ({exc})", flush=True)
                    continue
                masks = {}
                gt_dice = []
                for case in cases:
                    pred = predictor.predict_case(case)
                    mask = sitk.GetArrayFromImage(pred.mask)
                    masks[case.patient_id] = mask
                    assert case.label_path is not None
                    gt = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label_path))) > 0
                    gt_dice.append(_dice(mask, gt))
                if (backend, precision) == ("torch", "fp32"):
                    ref = {"masks": masks, "mean": float(np.mean(gt_dice))}
                agree = [_dice(masks[k], ref["masks"][k]) for k in masks]
                row = {
                    "model": name,
                    "tta": tta,
                    "backend": backend,
                    "precision": precision,
                    "worst_case_dice_vs_fp32": min(agree),
                    "heldout_mean_dice": float(np.mean(gt_dice)),
                    "delta_mean_dice": float(np.mean(gt_dice)) - ref["mean"],
                }
                row["pass"] = row["worst_case_dice_vs_fp32"] >= 0.995 and abs(row["delta_mean_dice"]) <= 0.005
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\nmodel  tta    backend      precision  worst Dice vs fp32  held-out Dice  Δ        pass")
    for r in rows:
        print(
            f"{r['model']:<6} {r['tta']!s:<6} {r['backend']:<12} {r['precision']:<10} "
            f"{r['worst_case_dice_vs_fp32']:<19.4f} {r['heldout_mean_dice']:<14.4f} "
            f"{r['delta_mean_dice']:+.4f}  {r['pass']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=("train", "convergence", "compare", "all"))
    parser.add_argument("--work", default=".bench-cache/accuracy", help="Folder kept between runs.")
    parser.add_argument("--f24-epochs", type=int, default=30)
    parser.add_argument("--f24-n-train", type=int, default=20, help="phantoms for training + validation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["demo", "f24"])
    parser.add_argument(
        "--combos",
        nargs="+",
        default=["torch:bf16", "openvino:fp32", "openvino:bf16", "onnxruntime:fp32"],
        help="backend:precision pairs compared with torch:fp32 (precision bf16-whole: no float32 output layer).",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    import torch

    torch.set_num_threads(args.threads)
    if args.stage in ("train", "all"):
        stage_train(args)
    if args.stage in ("convergence", "all"):
        stage_convergence(args)
    if args.stage in ("compare", "all"):
        stage_compare(args)
    _ = math
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
