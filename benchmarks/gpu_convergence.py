"""Does augmenting on the GPU train as well as augmenting in the loader workers?

Usage (a CUDA machine, about 2 minutes on an H200)::

    python benchmarks/gpu_convergence.py --json gpu_convergence.json
    python benchmarks/gpu_convergence.py --cpu --seeds 1 2     # the same on the CPU (~3 min a run)
    python benchmarks/gpu_convergence.py --quick               # any machine: checks that it runs

With ``--cpu`` both runs train on the CPU, deterministically, and the batched code path of the
GPU (:class:`~hecktorseg.training.device_data.DeviceBatches`) is forced onto the CPU: what
differs between the two runs of a seed is then the augmentation path alone, not the
run-to-run variation of GPU kernels.

The demo's GTVp + GTVn recipe (:meth:`hecktorseg.demo.DemoConfig.train_config`, task 2025,
16 phantoms, 4 of them validating) with the default augmentation switched back on (rotation
and mirroring), trained with ``augment_device`` ``cuda`` and ``cpu`` for each of ``--seeds``.
Both paths draw the same rotations and flips per sample; only the interpolation's rounding
differs. It reports each run's final and best validation Dice and score, and per seed the
difference between the two. The criterion for a default (the performance notes): the final
validation Dice within 0.01 on every seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import torch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (the demo's 30)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--cpu", action="store_true", help="both paths on the CPU, deterministic")
    parser.add_argument("--quick", action="store_true", help="--cpu, 1 epoch, seed 0: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.cpu, args.epochs, args.seeds = True, 1, [0]
    if args.cpu:
        from hecktorseg.training import device_data

        # the batched path whatever the device, for the runs that ask for augment_device "cuda"
        device_data.augment_on_device = lambda config, device: config.augment_device == "cuda"  # type: ignore[assignment]
    elif not torch.cuda.is_available():
        sys.exit(
            "gpu_convergence.py compares augmentation on a CUDA device with the CPU: no CUDA device here"
        )

    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.demo import DemoConfig
    from hecktorseg.preprocessing import preprocess_dataset
    from hecktorseg.training import TrainConfig, train

    demo = DemoConfig(edition="2025", device="cpu" if args.cpu else "cuda", epochs=args.epochs)
    defaults = TrainConfig()
    runs: list[dict[str, Any]] = []
    results: dict[str, Any] = {
        "device": "cpu" if args.cpu else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "runs": runs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_dataset(root / "raw", n_cases=demo.n_train, edition="2025", seed=demo.seed)
        preprocess_dataset(root / "raw", root / "pre", demo.preprocess_config(), workers=8)
        ids = sorted(p.name for p in (root / "pre").iterdir() if p.is_dir())
        split = root / "split.json"
        split.write_text(
            json.dumps([{"train": ids[: -demo.n_val], "val": ids[-demo.n_val :]}]), encoding="utf-8"
        )
        base = demo.train_config(str(split))
        for seed in args.seeds:
            for where in ("cuda", "cpu"):
                config = attrs.evolve(
                    base,
                    seed=seed,
                    augment_device=where,
                    rotation_p=defaults.rotation_p,
                    mirror_p=defaults.mirror_p,
                    num_workers=4,
                    plot=False,
                    deterministic=args.cpu,
                )
                start = time.perf_counter()
                result = train(root / "pre", root / f"{where}_{seed}", config, fold=0)
                last = result.history[-1]
                runs.append(
                    {
                        "seed": seed,
                        "augment_device": where,
                        "final_val_dice": round(last.val_dice, 4),
                        "final_val_score": round(last.score, 4),
                        "best_val_score": round(float(result.best_dice), 4),
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                print(runs[-1], flush=True)
    by = {(r["seed"], r["augment_device"]): r for r in runs}
    diffs = [by[(s, "cuda")]["final_val_dice"] - by[(s, "cpu")]["final_val_dice"] for s in args.seeds]
    results["final_val_dice_difference_per_seed"] = [round(d, 4) for d in diffs]
    results["within_0.01_on_every_seed"] = all(abs(d) <= 0.01 for d in diffs)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
