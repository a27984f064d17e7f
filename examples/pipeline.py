"""The whole hecktorseg pipeline through the Python API, on synthetic data.

Steps (each is one call of the public API):

1. :func:`hecktorseg.data.write_synthetic_dataset` writes HECKTOR 2020-style
   PET/CT phantoms (nested ``<PID>/<PID>_ct.nii.gz`` folders and ``bbox.csv``);
   the last few patients are copied aside as a held-out test set.
2. :func:`hecktorseg.preprocessing.preprocess_dataset` resamples the training
   patients onto a coarse reference grid (32³ voxels of 4.5 mm over the 144 mm
   head-and-neck box, instead of the paper's 144³ at 1 mm) so that the example
   runs on a laptop CPU.
3. :func:`hecktorseg.training.train` trains a small SE-norm U-Net with
   learn-fast settings (few filters, learning rate 1e-2) on the CPU.
4. :class:`hecktorseg.inference.Predictor` and
   :func:`hecktorseg.inference.predict_dataset` segment the held-out patients
   and write the masks on each patient's original CT grid.
5. :func:`hecktorseg.evaluation.evaluate` scores them with the HECKTOR 2020
   rules (Dice inside the box) and writes ``per_case.csv`` / ``summary.json``.

Run it with::

    python examples/pipeline.py --out runs/pipeline          # a few minutes on 2 CPU cores
    python examples/pipeline.py --quick                      # tiny phantoms, seconds

Progress goes to the log (stderr); stdout gets only the final summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

from hecktorseg.data import SyntheticConfig, write_synthetic_dataset
from hecktorseg.evaluation import evaluate
from hecktorseg.inference import Predictor, predict_dataset
from hecktorseg.io import atomic_write_text, write_bbox_table
from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset
from hecktorseg.training import TrainConfig, train

logger = logging.getLogger("pipeline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the example."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="tiny phantoms, 6 patients, 2 epochs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the training")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline and print the summary; returns the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out: Path = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="hecktorseg-pipeline-"))
    out.mkdir(parents=True, exist_ok=True)

    if args.quick:
        synth_cfg, n_train, n_val, n_test, epochs, n_filters = SyntheticConfig.tiny(), 4, 1, 2, 2, 4
    else:
        synth_cfg, n_train, n_val, n_test, epochs, n_filters = SyntheticConfig(), 16, 4, 6, 30, 8

    # 1. synthetic HECKTOR 2020-style data; the last n_test patients are held out.
    raw = out / "data" / "raw"
    cases = write_synthetic_dataset(
        raw, n_cases=n_train + n_test, edition="2020", seed=args.seed, config=synth_cfg, force=True
    )
    train_cases, test_cases = cases[:n_train], cases[n_train:]
    test_dir = out / "data" / "test"
    if test_dir.exists():
        shutil.rmtree(test_dir)
    for case in test_cases:
        shutil.copytree(case.ct_path.parent, test_dir / case.patient_id)
    write_bbox_table(test_dir / "bbox.csv", {c.patient_id: c.bbox for c in test_cases if c.bbox is not None})
    logger.info("synthesised %d patients in %s (%d held out)", len(cases), raw, n_test)

    # 2. preprocessing onto a coarse reference grid: 32³ voxels of 4.5 mm = the 144 mm box.
    pre_cfg = PreprocessConfig(spacing=(4.5, 4.5, 4.5), size=(32, 32, 32))
    preprocessed = out / "data" / "preprocessed"
    report = preprocess_dataset(train_cases, preprocessed, pre_cfg, force=True)
    if not report.ok:
        logger.error("preprocessing failed: %s", report.failed)
        return 1

    # 3. training with a fixed split: the last n_val training patients validate.
    ids = [c.patient_id for c in train_cases]
    split_file = out / "split.json"
    atomic_write_text(
        split_file, json.dumps({"folds": [{"train": ids[:-n_val], "val": ids[-n_val:]}]}, indent=2)
    )
    train_cfg = TrainConfig(
        n_filters=n_filters,
        epochs=epochs,
        lr=1e-2,
        split="file",
        split_file=str(split_file),
        seed=args.seed,
        num_workers=0,
        device="cpu",
        rotation_p=0.0,
        plot=not args.quick,
    )
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    result = train(preprocessed, model_dir, train_cfg, fold=0)

    # 4. prediction of the held-out patients, back on their original CT grids.
    predictor = Predictor.from_checkpoints([result.best_checkpoint], device="cpu")
    pred_dir = out / "predictions"
    predicted = predict_dataset(test_dir, pred_dir, predictor, force=True)
    if not predicted.ok:
        logger.error("prediction failed: %s", predicted.failed)
        return 1

    # 5. scoring with the official HECKTOR 2020 rules (Dice inside the box).
    scores = evaluate(pred_dir, test_dir, edition="2020", out_dir=out / "scores", force=True)

    print(f"hecktorseg pipeline example ({'quick' if args.quick else 'full'})")
    print(f"output folder: {out}")
    print(f"checkpoint: {result.best_checkpoint}")
    print(f"best validation Dice: {result.best_dice:.4f} (epoch {result.best_epoch})")
    print(f"held-out cases: {len(scores.cases)}")
    for pid, value in sorted(scores.per_case_dice.items()):
        print(f"  {pid}: Dice {value:.4f}")
    print(f"mean Dice (2020 rules): {scores.mean_dice:.4f}")
    print(f"scores: {scores.summary_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
