"""Training throughput on CPU: our step vs a plain eager fp32 loop, fp32 vs bf16, and data loading.

Usage::

    python benchmarks/bench_train.py                    # 144^3, f = 24, batch 1, 2 threads
    python benchmarks/bench_train.py --size 64 --steps 5
    python benchmarks/bench_train.py --size 32 --filters 4 --json out.json

It writes a small synthetic dataset, preprocesses it to ``size^3`` voxels covering the
paper's 144 mm box, and measures

- ``plain fp32``: a hand-written eager loop (zero_grad, forward, loss, backward, step);
- ``ours fp32`` / ``ours bf16``: :func:`hecktorseg.training.train_step` (the trainer's
  step) without and with bfloat16 autocast; ``ours fp32 channels-last`` and ``ours bf16 +
  channels-last`` (``amp: true, channels_last: true``, the fast CPU mode) as well;
- data loading: one augmented training item (rotation + mirroring + normalisation,
  worst case p = 1) and one plain item, and their share of a training iteration when
  loaded in the training process (``num_workers 0``; with workers it overlaps).

Runs are short (``--warmup`` + ``--steps`` per variant); numbers are samples/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _timeit(fn: Callable[[], object], warmup: int, reps: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=144, help="cube side in voxels (multiple of 16)")
    parser.add_argument("--filters", type=int, default=24, help="n_filters of the SE-norm U-Net")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant")
    parser.add_argument(
        "--skip", default="", help="comma-separated variants to skip (plain,fp32,bf16,cl,bf16cl)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    from hecktorseg.data import PreprocessedDataset
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.losses import build_loss
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset
    from hecktorseg.training import TrainConfig, build_augmentation, build_train_model, train_step

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_dataset(root / "raw", n_cases=2, seed=0)
        spacing = 144.0 / args.size
        preprocess_dataset(
            root / "raw", root / "pre", PreprocessConfig(spacing=(spacing,) * 3, size=(args.size,) * 3)
        )
        config = TrainConfig(n_filters=args.filters, rotation_p=1.0, mirror_p=1.0)
        augmented = PreprocessedDataset(root / "pre", transform=build_augmentation(config))
        plain = PreprocessedDataset(root / "pre")
        keys = iter(range(10**6))
        t_aug = _timeit(lambda: augmented[(next(keys), 0)], 1, 5)
        t_plain = _timeit(lambda: plain[0], 1, 5)
        results["data_augmented_s"] = statistics.median(t_aug)
        results["data_plain_s"] = statistics.median(t_plain)

        item = augmented[(0, 0)]
        batch = {"image": item["image"][None], "label": item["label"][None]}
        loss_fn = build_loss("dice_focal")

        def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
            torch.manual_seed(0)
            model = build_train_model(config)
            model.train()
            return model, torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99))

        if "plain" not in skip:
            model, opt = fresh()

            def plain_step() -> None:
                opt.zero_grad()
                loss = loss_fn(model(batch["image"]), batch["label"])
                loss.backward()
                opt.step()

            results["plain_fp32_s"] = statistics.median(_timeit(plain_step, args.warmup, args.steps))
        variants: list[tuple[str, torch.dtype | None, torch.memory_format]] = [
            ("fp32", None, torch.contiguous_format),
            ("bf16", torch.bfloat16, torch.contiguous_format),
            ("cl", None, torch.channels_last_3d),
            ("bf16cl", torch.bfloat16, torch.channels_last_3d),
        ]
        for name, dtype, fmt in variants:
            if name in skip:
                continue
            model, opt = fresh()
            model = model.to(memory_format=fmt)  # type: ignore[call-overload]

            def ours(m: torch.nn.Module = model, o: torch.optim.Optimizer = opt, d: torch.dtype | None = dtype,
                     f: torch.memory_format = fmt) -> None:  # fmt: skip
                train_step(m, batch, loss_fn, o, amp_dtype=d, memory_format=f)

            results[f"ours_{name}_s"] = statistics.median(_timeit(ours, args.warmup, args.steps))

    print(f"training step at {args.size}^3, f = {args.filters}, batch 1, {args.threads} threads")
    labels = {
        "plain_fp32_s": "plain eager fp32 loop",
        "ours_fp32_s": "ours (train_step) fp32",
        "ours_bf16_s": "ours (train_step) bf16 autocast",
        "ours_cl_s": "ours fp32 channels-last-3d",
        "ours_bf16cl_s": "ours bf16 + channels-last-3d",
    }
    for key, label in labels.items():
        if key in results:
            print(f"  {label:34s} {1.0 / results[key]:8.3f} samples/s  ({results[key]:.2f} s/step)")
    step = results.get("ours_fp32_s") or results.get("ours_bf16_s") or results.get("plain_fp32_s")
    print(f"  data item, augmented (p = 1)      {results['data_augmented_s'] * 1e3:8.1f} ms")
    print(f"  data item, plain (validation)     {results['data_plain_s'] * 1e3:8.1f} ms")
    if step:
        share = results["data_augmented_s"] / (results["data_augmented_s"] + step)
        results["data_share"] = share
        print(f"  data-loading share (num_workers 0) {100 * share:7.1f} %")
    if args.json is not None:
        args.json.write_text(json.dumps({"size": args.size, "filters": args.filters, **results}, indent=2))


if __name__ == "__main__":
    main()
