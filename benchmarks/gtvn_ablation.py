"""GTVn ablation on the 2025 phantoms: which training settings make a 3-class model find lymph nodes.

One run = the 2025 demo's pipeline with chosen settings: synthesise 2025 phantoms (training +
held-out, and a second, fresh set with another seed), preprocess onto a grid, train one model,
predict both test sets on their CT grids and score them by the HECKTOR 2025 rules. Each run
prints (and appends to ``--json``) GTVp mean Dice, GTVn DSCagg and the GTVn detection F1 with
TP/FP/FN, on the held-out and the fresh phantoms, and the training time. ``--min-volume-sweep``
also scores GTVn post-processing thresholds (``--min-gtvn-volume``) on validation phantoms of
their own seed, which is how the default of ``predict --min-gtvn-volume`` was chosen.

The data of one grid is made once per ``--work`` folder and reused by later runs.

Examples
--------
::

    python benchmarks/gtvn_ablation.py --work /tmp/abl --name demo-defaults
    python benchmarks/gtvn_ablation.py --work /tmp/abl --name paper-loss --set loss=dice_focal \
        --set dice_mode=sample --set patch_fg_p=0

``--set FIELD=VALUE`` changes a :class:`hecktorseg.training.TrainConfig` field of the demo's
recipe (values parsed as YAML); ``--spacing`` / ``--size`` change the grid; ``--quick`` is a
smoke run (tiny data, 2 epochs).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import yaml

from hecktorseg.data import write_synthetic_dataset
from hecktorseg.demo import DemoConfig
from hecktorseg.evaluation import evaluate
from hecktorseg.inference import Predictor, PredictorConfig, predict_dataset, remove_small_components
from hecktorseg.io import read_image, write_image
from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset
from hecktorseg.training import TrainConfig, train

FRESH_SEED = 1234
FRESH_CASES = 8
VALIDATION_SEED = 7
MIN_VOLUMES_MM3 = (0.0, 50.0, 100.0, 200.0, 300.0, 500.0)


def _data(work: Path, demo: DemoConfig, depth: int) -> tuple[Path, Path, Path]:
    """Training data (preprocessed), held-out and fresh test folders; made once per grid."""
    raw = work / f"raw-{demo.n_train}-{demo.n_test}-s{demo.seed}"
    test = work / f"test-{demo.n_train}-{demo.n_test}-s{demo.seed}"
    fresh = work / f"fresh-{FRESH_CASES}-s{FRESH_SEED}"
    if not raw.exists():
        cases = write_synthetic_dataset(
            raw, n_cases=demo.n_train + demo.n_test, edition="2025", seed=demo.seed
        )
        for case in cases[demo.n_train :]:
            shutil.copytree(case.ct_path.parent, test / case.ct_path.parent.name)
            shutil.rmtree(case.ct_path.parent)
    if not fresh.exists():
        write_synthetic_dataset(fresh, n_cases=FRESH_CASES, edition="2025", seed=FRESH_SEED)
    pre = work / f"pre-{demo.spacing:g}mm-{demo.size}x{depth}"
    if not pre.exists():
        from hecktorseg.io import discover_cases

        cfg = PreprocessConfig(spacing=(demo.spacing,) * 3, size=(demo.size, demo.size, depth))
        preprocess_dataset(discover_cases(raw, layout="2025"), pre, cfg)
    return pre, test, fresh


def _min_volume_sweep(work: Path, run_dir: Path, predictor: Predictor, n_cases: int) -> list[dict[str, Any]]:
    """GTVn scores of the predictions of validation phantoms after removing components under each volume.

    The validation phantoms have their own seed: neither the training and held-out phantoms
    nor the fresh ones. The model predicts once; each threshold filters those masks.
    """
    val = work / f"val-{n_cases}-s{VALIDATION_SEED}"
    if not val.exists():
        write_synthetic_dataset(val, n_cases=n_cases, edition="2025", seed=VALIDATION_SEED)
    raw = run_dir / "pred-val"
    predict_dataset(val, raw, predictor, layout="2025")
    rows = []
    for volume in MIN_VOLUMES_MM3:
        folder = run_dir / f"pred-val-min{volume:g}"
        folder.mkdir()
        for mask_path in sorted(raw.glob("*.nii.gz")):
            image = read_image(mask_path, kind="label")
            kept = remove_small_components(sitk.GetArrayFromImage(image), image.GetSpacing(), volume)
            filtered = sitk.GetImageFromArray(np.asarray(kept, dtype=np.uint8))
            filtered.CopyInformation(image)
            write_image(filtered, folder / mask_path.name)
        scores = evaluate(folder, val, edition="2025", layout="2025", out_dir=folder / "scores")
        rows.append({"min_gtvn_volume": volume, **_scores(dict(scores.summary))})
    return rows


def _scores(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("gtvp_mean_dice", "gtvn_dsc_agg", "gtvn_f1_agg", "gtvn_tp", "gtvn_fp", "gtvn_fn")
    return {k: summary.get(k) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for data and runs")
    parser.add_argument("--name", default="run", help="name of this run (its folder in --work)")
    parser.add_argument("--set", action="append", default=[], help="TrainConfig FIELD=VALUE")
    parser.add_argument("--spacing", type=float, default=None, help="grid spacing (mm)")
    parser.add_argument("--size", type=int, default=None, help="grid side (voxels)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument(
        "--min-gtvn-volume",
        type=float,
        default=0.0,
        help="GTVn post-processing of the test predictions (mm³)",
    )
    parser.add_argument("--json", type=Path, default=None, help="append the result to this JSON-lines file")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, 2 epochs")
    parser.add_argument(
        "--min-volume-sweep",
        action="store_true",
        help="also score GTVn post-processing thresholds on validation phantoms of their own seed",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from hecktorseg.demo.run import _taller, _train_config

    demo = DemoConfig(edition="2025")
    if args.quick:
        demo = DemoConfig(edition="2025", n_train=5, n_test=2, n_val=2, epochs=2, size=16, spacing=9.0)
    changes: dict[str, Any] = {}
    if args.spacing is not None:
        changes["spacing"] = args.spacing
    if args.size is not None:
        changes["size"] = args.size
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if changes:
        import attrs

        demo = attrs.evolve(demo, **changes)
    depth = _taller(demo.size)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    pre, test, fresh = _data(work, demo, depth)

    run_dir = work / args.name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir()
    ids = sorted(
        p.name for p in (work / f"raw-{demo.n_train}-{demo.n_test}-s{demo.seed}").iterdir() if p.is_dir()
    )
    base: TrainConfig = _train_config(demo, run_dir, ids)
    overrides = {"seed": args.seed}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    import attrs

    cfg = attrs.evolve(base, **overrides)
    start = time.perf_counter()
    result = train(pre, run_dir / "model", cfg, fold=0)
    train_s = time.perf_counter() - start

    predictor = Predictor.from_checkpoints(
        [result.best_checkpoint],
        PredictorConfig(
            device="cpu", backend="torch", precision="fp32", min_gtvn_volume=args.min_gtvn_volume
        ),
    )
    out: dict[str, Any] = {
        "name": args.name,
        "settings": {k: v for k, v in overrides.items()},
        "grid": f"{demo.spacing:g} mm {demo.size}x{demo.size}x{depth}",
        "epochs": cfg.epochs,
        "train_s": round(train_s, 1),
        "best_epoch": result.best_epoch,
        "best_val_score": result.best_dice,
    }
    for label, folder in (("held_out", test), ("fresh", fresh)):
        preds = run_dir / f"pred-{label}"
        predict_dataset(folder, preds, predictor, layout="2025")
        scores = evaluate(preds, folder, edition="2025", layout="2025", out_dir=run_dir / f"scores-{label}")
        out[label] = _scores(dict(scores.summary))
    if args.min_volume_sweep:
        out["min_gtvn_volume_sweep"] = _min_volume_sweep(work, run_dir, predictor, 2 if args.quick else 12)
    print(json.dumps(out))
    if args.json is not None:
        with args.json.open("a") as handle:
            handle.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
