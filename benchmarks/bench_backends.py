"""Speed of each inference backend × precision, side by side in one process, interleaved.

One SE-norm U-Net (random weights: speed does not depend on them) on a ``--size``³ input.
Each combination is compiled once (start-up reported separately), then the combinations
take turns (A, B, C, A, B, C, …) for ``--rounds`` rounds, so a shared machine's changing
load hits them all alike; the table gives the median and best seconds per forward pass and
the ratio to torch fp32 measured in the same rounds. ``--tta-batches`` also times the 8
test-time mirrorings run as batches of 1, 2, 4 or 8 with the fastest combination.

In bf16 the backends run the network's output block in float32 (see
:func:`hecktorseg.models.split_output_head`); ``torch:bf16-whole`` and
``openvino:bf16-whole`` run the whole network in bf16, to show what that costs.

Usage::

    python benchmarks/bench_backends.py                       # 144³, f = 24, 2 threads
    python benchmarks/bench_backends.py --size 64 --rounds 5 --json backends.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _whole import whole_network

COMBOS = ("torch:fp32", "torch:bf16", "openvino:fp32", "openvino:bf16", "onnxruntime:fp32")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=144)
    parser.add_argument("--filters", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--combos", nargs="+", default=list(COMBOS))
    parser.add_argument("--tta-batches", type=int, nargs="*", default=[])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from hecktorseg.inference.backends import RuntimeChoice, backend_available, compile_model
    from hecktorseg.models import build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 2, args.size, args.size, args.size)
    runners: dict[str, Any] = {}
    startup: dict[str, float] = {}
    for combo in args.combos:
        backend, precision = combo.split(":")
        whole = precision.endswith("-whole")
        precision = precision.removesuffix("-whole")
        if not backend_available(backend):
            print(f"{combo}: not installed, skipped")
            continue
        torch.manual_seed(0)
        model = build_model("senorm_unet", n_filters=args.filters).eval()
        if whole:
            model = whole_network(model)
        t0 = time.perf_counter()
        run = compile_model(
            model,
            RuntimeChoice(backend, precision, torch.device("cpu")),
            cache=False,
            num_threads=args.threads,
        )  # type: ignore[arg-type]
        run(x)  # first call: OpenVINO compiles for the shape, torch warms up its kernels
        startup[combo] = time.perf_counter() - t0
        runners[combo] = run
        print(f"{combo}: start-up (convert + compile + first call) {startup[combo]:.1f} s", flush=True)
    times: dict[str, list[float]] = {c: [] for c in runners}
    loads = []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for combo, run in runners.items():
            t0 = time.perf_counter()
            run(x)
            times[combo].append(time.perf_counter() - t0)
        print(f"round {r + 1}: " + ", ".join(f"{c} {t[-1]:.2f}s" for c, t in times.items()), flush=True)
    ref = times.get("torch:fp32")
    rows = []
    print(
        f"\n{args.size}³, f={args.filters}, {args.threads} threads, load average {min(loads):.1f}–{max(loads):.1f}"
    )
    print("combination        median s   best s   ratio to torch fp32 (median of per-round ratios)")
    for combo, t in times.items():
        ratio = statistics.median(a / b for a, b in zip(t, ref, strict=True)) if ref else float("nan")
        rows.append(
            {
                "combo": combo,
                "median_s": statistics.median(t),
                "best_s": min(t),
                "ratio": ratio,
                "startup_s": startup[combo],
            }
        )
        print(f"{combo:<18} {statistics.median(t):8.2f} {min(t):8.2f}   {ratio:.2f}")
    tta_rows = []
    if args.tta_batches and runners:
        best = min(rows, key=lambda r: r["median_s"])["combo"]
        run = runners[best]
        flips = [(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]
        for n in args.tta_batches:
            run(torch.cat([x] * n))  # compile for the batch shape
        for _ in range(max(1, args.rounds - 1)):
            for n in args.tta_batches:
                t0 = time.perf_counter()
                for i in range(0, 8, n):
                    run(torch.cat([torch.flip(x, d) if d else x for d in flips[i : i + n]]))
                tta_rows.append({"combo": best, "tta_batch": n, "seconds": time.perf_counter() - t0})
                print(
                    f"TTA with {best}, batch {n}: {tta_rows[-1]['seconds']:.1f} s for 8 mirrorings",
                    flush=True,
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": vars(args) | {"json": str(args.json)},
                    "loads": loads,
                    "rows": rows,
                    "tta": tta_rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
