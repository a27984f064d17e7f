"""Training on a GPU: compute-only steps, end-to-end samples/s, first-epoch overhead, peak memory.

Usage::

    python benchmarks/bench_gpu_train.py --json gpu_train.json      # a GPU machine, about 3-5 min
    python benchmarks/bench_gpu_train.py --quick                    # any machine, tiny sizes

It writes a synthetic dataset, preprocesses it to ``size^3`` voxels, and measures on the
default device (CUDA when visible, else the CPU):

- ``compute``: :func:`hecktorseg.training.train_step` on one batch already on the device, per
  precision (fp32 — with TF32 as set —, fp16 + gradient scaling, bf16) and memory format
  (contiguous, channels-last-3d): ms per step, samples/s and peak memory. The ceiling of
  what the data pipeline can reach.
- ``end_to_end``: :func:`hecktorseg.training.train` with the defaults (``device auto``) for
  ``--epochs`` epochs, once with ``augment_device auto`` (the GPU on CUDA) and once with
  ``cpu`` (the loader workers): steady samples/s (epochs after the first), first-epoch
  overhead in seconds (first epoch minus the median of the others), peak memory, and the
  ratio to the compute-only samples/s of the default precision.
- ``demo``: the demo's training recipe (32^3 grid, f = 8, batch 1, mirroring only) on the
  default device and on the CPU: samples/s.

Everything is printed and, with ``--json``, written as one JSON object (with the machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _dataset(root: Path, n_cases: int, size: int, spacing: float) -> Path:
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

    write_synthetic_dataset(root / "raw", n_cases=n_cases, seed=0)
    preprocess_dataset(root / "raw", root / "pre", PreprocessConfig(spacing=(spacing,) * 3, size=(size,) * 3))
    return root / "pre"


def compute_only(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """``train_step`` on a fixed batch on the device, per precision and memory format."""
    from hecktorseg.losses import build_loss
    from hecktorseg.training import TrainConfig, build_train_model, train_step

    precisions = ["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32", "bf16"]
    dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, 2, args.size, args.size, args.size)
    batch = {
        "image": torch.randn(shape, generator=g).to(device),
        "label": (torch.rand((args.batch, 1, *shape[2:]), generator=g) > 0.9).float().to(device),
    }
    loss_fn = build_loss("dice_focal")
    rows = []
    for precision in precisions:
        for channels_last in (False, True):
            torch.manual_seed(0)
            fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
            model = build_train_model(TrainConfig(n_filters=args.filters)).to(device).to(memory_format=fmt)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
            _reset_peak(device)

            kwargs: dict[str, Any] = {
                "scaler": scaler,
                "amp_dtype": dtypes[precision],
                "device": device,
                "memory_format": fmt,
            }
            for _ in range(args.warmup):
                train_step(model, batch, loss_fn, optimizer, **kwargs)
            _sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                train_step(model, batch, loss_fn, optimizer, **kwargs)
            _sync(device)
            ms = 1000 * (time.perf_counter() - start) / args.steps
            rows.append(
                {
                    "precision": precision,
                    "channels_last": channels_last,
                    "ms_per_step": round(ms, 1),
                    "samples_per_s": round(1000 * args.batch / ms, 2),
                    "peak_gib": _peak_gib(device),
                }
            )
            print(
                f"compute {precision:4s} {'channels-last' if channels_last else 'contiguous   '} {ms:8.1f} ms"
            )
    return rows


def end_to_end(
    args: argparse.Namespace, data: Path, out: Path, device: torch.device, **changes: Any
) -> dict[str, Any]:
    """``train`` with the defaults (plus ``changes``): steady samples/s and first-epoch overhead."""
    from hecktorseg.training import TrainConfig, train

    config = TrainConfig(
        n_filters=args.filters,
        batch_size=args.batch,
        epochs=args.epochs,
        split="random",
        n_folds=4,
        num_workers=args.workers,
        plot=True,
        **changes,
    )
    _reset_peak(device)
    start = time.perf_counter()
    result = train(data, out, config, fold=0, force=True)
    total = time.perf_counter() - start
    seconds = [row.seconds for row in result.history]
    n_train = len(json.loads((result.fold_dir / "split.json").read_text(encoding="utf-8"))["train"])
    later = seconds[1:] or seconds
    steady = statistics.median(later)
    runtime = result.runtime.to_dict() if result.runtime is not None else {}
    row = {
        "changes": {k: str(v) for k, v in changes.items()},
        "runtime": runtime,
        "epoch_seconds": [round(s, 2) for s in seconds],
        "steady_samples_per_s": round(n_train / steady, 2) if steady > 0 else None,
        "first_epoch_overhead_s": round(seconds[0] - steady, 2) if len(seconds) > 1 else None,
        "total_s": round(total, 1),
        "peak_gib": _peak_gib(device),
    }
    print(
        f"end to end {changes or 'defaults'}: {row['steady_samples_per_s']} samples/s, "
        f"first epoch +{row['first_epoch_overhead_s']} s ({runtime.get('augment_device')})"
    )
    return row


def demo_training(args: argparse.Namespace, root: Path, device: torch.device) -> dict[str, Any]:
    """The demo's training recipe (32^3, f = 8, batch 1, mirroring only) on ``device``: samples/s."""
    from hecktorseg.training import TrainConfig, train

    data = root / "demo_pre"
    if not data.exists():
        from hecktorseg.data.synthetic import write_synthetic_dataset
        from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

        write_synthetic_dataset(root / "demo_raw", n_cases=args.demo_cases, seed=0)
        preprocess_dataset(root / "demo_raw", data, PreprocessConfig(spacing=(4.5,) * 3, size=(32,) * 3))
    config = TrainConfig(
        n_filters=8,
        lr=1e-2,
        epochs=args.epochs,
        split="random",
        n_folds=4,
        num_workers=0,
        device=device.type,  # type: ignore[arg-type]
        rotation_p=0.0,
        mirror_p=0.5,
        t_0=args.epochs,
    )
    result = train(data, root / f"demo_{device.type}", config, fold=0, force=True)
    seconds = [row.seconds for row in result.history]
    n_train = len(json.loads((result.fold_dir / "split.json").read_text(encoding="utf-8"))["train"])
    steady = statistics.median(seconds[1:] or seconds)
    speed = round(n_train / steady, 2) if steady > 0 else None
    print(f"demo training on {device}: {speed} samples/s")
    return {"device": str(device), "samples_per_s": speed, "epoch_seconds": [round(s, 2) for s in seconds]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=144, help="cube side in voxels (multiple of 16)")
    parser.add_argument("--filters", type=int, default=24, help="n_filters of the SE-norm U-Net")
    parser.add_argument("--batch", type=int, default=2, help="batch size")
    parser.add_argument("--steps", type=int, default=10, help="timed compute-only steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed compute-only steps per variant")
    parser.add_argument("--cases", type=int, default=16, help="synthetic cases (3/4 train) end to end")
    parser.add_argument("--epochs", type=int, default=4, help="epochs end to end (the first is the overhead)")
    parser.add_argument("--workers", type=int, default=8, help="num_workers end to end")
    parser.add_argument("--demo-cases", type=int, default=16, help="cases of the demo-recipe run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (any machine)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.size, args.filters, args.batch, args.steps, args.warmup = 32, 4, 2, 1, 1
        args.cases, args.epochs, args.workers, args.demo_cases = 4, 2, 0, 4
    from hecktorseg.runtime import resolve_device

    device = resolve_device("auto")
    results: dict[str, Any] = {
        "machine": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "cpu_cores": __import__("os").cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = _dataset(root, args.cases, args.size, 144.0 / args.size)
        results["compute"] = compute_only(args, device)
        runs = [end_to_end(args, data, root / "e2e_auto", device)]
        if device.type == "cuda":
            runs.append(end_to_end(args, data, root / "e2e_cpu_aug", device, augment_device="cpu"))
        results["end_to_end"] = runs
        default = "fp16" if device.type == "cuda" else "fp32"
        ceiling = next(r["samples_per_s"] for r in results["compute"] if r["precision"] == default)
        for run in runs:
            speed = run["steady_samples_per_s"]
            run["share_of_compute_only"] = round(speed / ceiling, 3) if speed and ceiling else None
        results["demo"] = [demo_training(args, root, device)]
        if device.type == "cuda":
            results["demo"].append(demo_training(args, root, torch.device("cpu")))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
