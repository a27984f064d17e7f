"""Training on a GPU: compute-only steps, end-to-end samples/s, first-epoch overhead, peak memory.

Usage::

    python benchmarks/bench_gpu_train.py --json gpu_train.json      # a GPU machine, about 3-4 min
    python benchmarks/bench_gpu_train.py --compile --json c.json    # + torch.compile (minutes more)
    python benchmarks/bench_gpu_train.py --quick                    # any machine, tiny sizes

It writes a synthetic GTVp + GTVn dataset (2025 layout), preprocesses it to ``size^3`` voxels,
and measures on the default device (CUDA when visible, else the CPU):

- ``compute``: :func:`hecktorseg.training.train_step` on one batch already on the device, with
  the model and loss that ``train`` builds for these data, per precision (fp32 — TF32 as the
  defaults set it —, fp16 + gradient scaling, bf16) and memory format (contiguous,
  channels-last-3d): ms per step, samples/s, peak memory, and the first step's seconds (cuDNN
  autotuning, kernel loading). On CUDA also the default precision with cuDNN autotuning off
  (``cudnn_benchmark``), and with ``--compile`` a ``torch.compile`` d network. This is the
  ceiling of what the data pipeline can reach.
- ``end_to_end``: :func:`hecktorseg.training.train` with the defaults (``device auto``) for
  ``--epochs`` epochs, once with ``augment_device auto`` (the GPU on CUDA) and once with
  ``cpu`` (the loader workers): the training loop's samples/s (``train_seconds`` of the
  epochs after the first), the whole epoch's (with validation and writes), first-epoch
  overhead (first epoch minus the median of the others), peak memory, and the loop's share of
  the compute-only samples/s of the same precision and memory format.
- ``demo``: the demo's own training recipe (:meth:`hecktorseg.demo.DemoConfig.train_config`,
  task 2025) on the default device, and on the CPU with 2 threads (the machine the demo was
  written for): the training loop's samples/s, and their ratio.

Everything is printed and, with ``--json``, written as one JSON object (with the machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _dataset(root: Path, name: str, n_cases: int, preprocess: Any) -> Path:
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.preprocessing import preprocess_dataset

    write_synthetic_dataset(root / f"{name}_raw", n_cases=n_cases, edition="2025", seed=0)
    workers = max(1, min(8, (os.cpu_count() or 1) - 1))
    preprocess_dataset(root / f"{name}_raw", root / f"{name}_pre", preprocess, workers=workers)
    return root / f"{name}_pre"


def _train_config(args: argparse.Namespace, **changes: Any) -> Any:
    from hecktorseg.training import TrainConfig

    return TrainConfig(
        n_filters=args.filters,
        batch_size=args.batch,
        epochs=args.epochs,
        split="random",
        n_folds=4,
        plot=True,
        **({} if args.workers is None else {"num_workers": args.workers}),
        **changes,
    )


def _time_steps(step: Any, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(seconds of the first step, ms per step over ``args.steps`` after ``args.warmup``)."""
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    first = time.perf_counter() - start
    for _ in range(max(args.warmup - 1, 0)):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    return first, 1000 * (time.perf_counter() - start) / args.steps


def compute_only(
    args: argparse.Namespace, data: Path, device: torch.device, variants: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``train_step`` on a fixed batch on the device, for each of ``variants`` (precision, memory
    format, options)."""
    from hecktorseg.training import (
        build_train_loss,
        build_train_model,
        dataset_n_classes,
        resolve_loss_defaults,
        train_step,
    )

    n_classes = dataset_n_classes(data)
    config = resolve_loss_defaults(_train_config(args), n_classes)
    loss_fn = build_train_loss(config, n_classes)
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, 2, args.size, args.size, args.size)
    batch = {
        "image": torch.randn(shape, generator=g).to(device),
        # sparse foreground of every class, as in the phantoms
        "label": (torch.rand((args.batch, 1, *shape[2:]), generator=g) * n_classes * 8)
        .floor()
        .clamp(max=n_classes - 1)
        .float()
        .to(device),
    }
    dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    rows = []
    for variant in variants:
        precision, channels_last = variant["precision"], variant["channels_last"]
        torch.backends.cudnn.benchmark = variant.get("cudnn_benchmark", True)
        torch.manual_seed(0)
        fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
        model = build_train_model(config, n_classes=n_classes).to(device).to(memory_format=fmt)
        net = torch.compile(model) if variant.get("compile") else model
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        _reset_peak(device)

        def step(
            net: Any = net,
            optimizer: Any = optimizer,
            scaler: Any = scaler,
            fmt: Any = fmt,
            p: str = precision,
        ) -> None:
            train_step(
                net,
                batch,
                loss_fn,
                optimizer,
                scaler=scaler,
                amp_dtype=dtypes[p],
                device=device,
                memory_format=fmt,
            )

        first, ms = _time_steps(step, args, device)
        row = {
            **variant,
            "ms_per_step": round(ms, 1),
            "samples_per_s": round(1000 * args.batch / ms, 2),
            "first_step_s": round(first, 2),
            "peak_gib": _peak_gib(device),
        }
        rows.append(row)
        print(f"compute {variant}: {ms:8.1f} ms/step, first step {first:.1f} s", flush=True)
        del net, model, optimizer
        if variant.get("compile"):
            torch._dynamo.reset()
    torch.backends.cudnn.benchmark = False
    return rows


def _loop_speed(history: Any, n_train: int) -> tuple[float | None, float | None]:
    """(steady training-loop samples/s, steady whole-epoch samples/s): medians after the first epoch."""
    later = history[1:] or history
    loop = statistics.median([row.train_seconds for row in later])
    epoch = statistics.median([row.seconds for row in later])
    return (
        round(n_train / loop, 2) if loop > 0 else None,
        round(n_train / epoch, 2) if epoch > 0 else None,
    )


def end_to_end(
    args: argparse.Namespace, data: Path, out: Path, device: torch.device, **changes: Any
) -> dict[str, Any]:
    """``train`` with the defaults (plus ``changes``): steady samples/s and first-epoch overhead."""
    from hecktorseg.training import train

    _reset_peak(device)
    start = time.perf_counter()
    result = train(data, out, _train_config(args, **changes), fold=0, force=True)
    total = time.perf_counter() - start
    seconds = [row.seconds for row in result.history]
    n_train = len(json.loads((result.fold_dir / "split.json").read_text(encoding="utf-8"))["train"])
    loop, epoch = _loop_speed(result.history, n_train)
    steady = statistics.median(seconds[1:] or seconds)
    runtime = result.runtime.to_dict() if result.runtime is not None else {}
    row = {
        "changes": {k: str(v) for k, v in changes.items()},
        "runtime": runtime,
        "n_train": n_train,
        "epoch_seconds": [round(s, 2) for s in seconds],
        "train_loop_seconds": [round(r.train_seconds, 2) for r in result.history],
        "loop_samples_per_s": loop,
        "steady_samples_per_s": epoch,
        "first_epoch_overhead_s": round(seconds[0] - steady, 2) if len(seconds) > 1 else None,
        "total_s": round(total, 1),
        "peak_gib": _peak_gib(device),
    }
    print(
        f"end to end {changes or 'defaults'}: loop {loop} samples/s, epoch {epoch} samples/s, "
        f"first epoch +{row['first_epoch_overhead_s']} s ({runtime.get('augment_device')})",
        flush=True,
    )
    return row


def demo_training(
    args: argparse.Namespace, data: Path, out: Path, device: str, epochs: int
) -> dict[str, Any]:
    """The demo's training recipe on ``device``: the training loop's samples/s after the first epoch."""
    from hecktorseg.demo import DemoConfig
    from hecktorseg.training import train

    cfg = DemoConfig(edition="2025", device=device, epochs=epochs)
    ids = sorted(p.name for p in data.iterdir() if p.is_dir())
    split = out.parent / f"{out.name}_split.json"
    split.write_text(json.dumps([{"train": ids[: -cfg.n_val], "val": ids[-cfg.n_val :]}]), encoding="utf-8")
    config = cfg.train_config(str(split))
    result = train(data, out, config, fold=0, force=True)
    loop, epoch = _loop_speed(result.history, len(ids) - cfg.n_val)
    runtime = result.runtime.to_dict() if result.runtime is not None else {}
    print(f"demo training on {device} ({torch.get_num_threads()} threads): loop {loop} samples/s", flush=True)
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "runtime": runtime,
        "loop_samples_per_s": loop,
        "steady_samples_per_s": epoch,
        "epoch_seconds": [round(r.seconds, 2) for r in result.history],
        "best_score": round(float(result.best_dice), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=144, help="cube side in voxels (multiple of 16)")
    parser.add_argument("--filters", type=int, default=24, help="n_filters of the SE-norm U-Net")
    parser.add_argument("--batch", type=int, default=2, help="batch size")
    parser.add_argument("--steps", type=int, default=10, help="timed compute-only steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed compute-only steps per variant")
    parser.add_argument("--cases", type=int, default=40, help="synthetic cases (3/4 train) end to end")
    parser.add_argument("--epochs", type=int, default=4, help="epochs end to end (the first is the overhead)")
    parser.add_argument(
        "--workers", type=int, default=None, help="num_workers end to end (default: the default)"
    )
    parser.add_argument("--demo-epochs", type=int, default=6, help="epochs of the demo recipe on the device")
    parser.add_argument(
        "--cpu-demo-epochs", type=int, default=3, help="epochs of the demo recipe on 2 CPU threads"
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA; minutes more)")
    parser.add_argument("--skip-end-to-end", action="store_true", help="compute-only and demo parts only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs (any machine)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.quick:
        args.size, args.filters, args.batch, args.steps, args.warmup = 32, 4, 2, 1, 1
        args.cases, args.epochs, args.workers, args.demo_epochs, args.cpu_demo_epochs = 4, 2, 0, 2, 2
    from hecktorseg.demo import DemoConfig
    from hecktorseg.preprocessing import PreprocessConfig
    from hecktorseg.runtime import resolve_device

    device = resolve_device("auto")
    results: dict[str, Any] = {
        "machine": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "cpu_cores": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }

    def save() -> None:
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        grid = PreprocessConfig(spacing=(144.0 / args.size,) * 3, size=(args.size,) * 3)
        data = _dataset(root, "e2e", args.cases, grid)
        cuda = device.type == "cuda"
        variants: list[dict[str, Any]] = [
            {"precision": p, "channels_last": cl}
            for p in (["fp32", "fp16", "bf16"] if cuda else ["fp32", "bf16"])
            for cl in (False, True)
        ]
        if cuda:
            variants.append({"precision": "fp16", "channels_last": False, "cudnn_benchmark": False})
        results["compute"] = compute_only(args, data, device, variants)
        save()
        if not args.skip_end_to_end:
            runs = [end_to_end(args, data, root / "e2e_auto", device)]
            if device.type == "cuda":
                runs.append(end_to_end(args, data, root / "e2e_cpu_aug", device, augment_device="cpu"))
            for run in runs:
                rt = run["runtime"]
                match = [
                    r
                    for r in results["compute"]
                    if r["precision"] == rt.get("precision", "fp32").split()[0]
                    and r["channels_last"] == bool(rt.get("channels_last"))
                    and "cudnn_benchmark" not in r
                    and "compile" not in r
                ]
                ceiling = match[0]["samples_per_s"] if match else None
                speed = run["loop_samples_per_s"]
                run["compute_only_samples_per_s"] = ceiling
                run["share_of_compute_only"] = round(speed / ceiling, 3) if speed and ceiling else None
            results["end_to_end"] = runs
            save()
        demo_cfg = DemoConfig(edition="2025")
        demo_data = _dataset(root, "demo", demo_cfg.n_train, demo_cfg.preprocess_config())
        demo = [demo_training(args, demo_data, root / "demo_device", "auto", args.demo_epochs)]
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            demo.append(demo_training(args, demo_data, root / "demo_cpu2", "cpu", args.cpu_demo_epochs))
        finally:
            torch.set_num_threads(threads)
        if demo[0]["loop_samples_per_s"] and demo[1]["loop_samples_per_s"]:
            results["demo_speedup_over_2_cpu_threads"] = round(
                demo[0]["loop_samples_per_s"] / demo[1]["loop_samples_per_s"], 1
            )
        results["demo"] = demo
        save()
        if args.compile:  # last: compiling takes minutes, and everything else is saved by then
            compiled = [
                {"precision": p, "channels_last": cl, "compile": True}
                for p, cl in (("fp16", False), ("bf16", True))
                if cuda or p != "fp16"
            ]
            results["compile"] = []
            for variant in compiled:
                results["compile"] += compute_only(args, data, device, [variant])
                save()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
