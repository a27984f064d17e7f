"""Benchmark the SE-norm U-Net on the CPU: time, peak memory and GFLOP/s per execution mode.

Side by side in one process, batch 1, ``--threads`` threads (default 2):

* forward (inference) and forward + backward (training step without optimiser);
* fp32 eager vs bf16 autocast, contiguous vs channels-last-3d, ``no_grad`` vs ``inference_mode``;
* optional ``torch.compile`` (``--compile``; compilation takes minutes on 2 cores);
* the achieved GFLOP/s (FLOPs counted once with ``FlopCounterMode`` on the meta device)
  against a measured 4096² fp32 (and bf16) matmul;
* agreement with fp32 eager: max |Δp| of the probabilities and the Dice of the masks
  thresholded at 0.5 (random weights: the logits straddle 0, a sensitive test).

Peak memory is the maximum resident set size sampled every 2 ms during the run, minus the
resident size before it (CPU only). Usage::

    python benchmarks/bench_model.py --size 144 --reps 2
    python benchmarks/bench_model.py --size 64 --reps 3 --no-backward
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from hecktorseg.inference.backends import compile_model, select_runtime
from hecktorseg.models import SENorm3d, SENormUNet, probabilities

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:  # noqa: PTH123
            return int(fh.read().split()[1]) * PAGE
    except OSError:
        return 0


class PeakRSS:
    """Sample the resident set size in a background thread."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = _rss_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def delta_gb(self) -> float:
        return (self.peak - self.base) / 1e9


def matmul_gflops(n: int = 4096, dtype: torch.dtype = torch.float32, reps: int = 3) -> float:
    """Best-of-``reps`` GFLOP/s of an ``n × n`` matmul."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def count_flops(size: int, n_filters: int, backward: bool = False) -> float:
    """Forward (or forward + backward) FLOPs of the model at ``size³`` (meta device, no compute)."""
    with torch.device("meta"):
        model = SENormUNet(n_filters=n_filters)
        x = torch.randn(1, 2, size, size, size, requires_grad=backward)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.sum().backward()
    return float(counter.get_total_flops())


@dataclass
class Mode:
    name: str
    bf16: bool = False
    channels_last: bool = False
    inference_mode: bool = True
    compile: bool = False
    auto: bool = False  # hecktorseg.inference: select_runtime('auto', 'auto', 'cpu') + compile_model
    textbook: bool = False  # unfused SE-norm (as in the original code)


@contextlib.contextmanager
def _mode_context(mode: Mode, grad: bool) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        if not grad:
            stack.enter_context(torch.inference_mode() if mode.inference_mode else torch.no_grad())
        if mode.bf16:
            stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        yield


def _textbook_senorm_forward(self: SENorm3d, x: torch.Tensor) -> torch.Tensor:
    """Unfused SE-norm as written in the paper (two pools, instance norm, multiply, add)."""
    gamma = torch.sigmoid(self.gamma(x))
    beta = torch.tanh(self.beta(x))
    return gamma * torch.nn.functional.instance_norm(x, eps=self.eps) + beta


def _make_runner(model: torch.nn.Module, x: torch.Tensor, mode: Mode) -> Callable[[], torch.Tensor]:
    fmt = torch.channels_last_3d if mode.channels_last else torch.contiguous_format
    if mode.auto:
        compiled = compile_model(model, select_runtime("auto", "auto", "cpu"), cache=False)

        def run_auto() -> torch.Tensor:
            return compiled(x)

        return run_auto
    inp = x.contiguous(memory_format=fmt)
    net: torch.nn.Module = model
    if mode.compile:
        net = torch.compile(model)  # type: ignore[assignment]

    def run() -> torch.Tensor:
        model.to(memory_format=fmt)
        with contextlib.ExitStack() as stack:
            if mode.textbook:
                stack.enter_context(_patched_senorm())
            stack.enter_context(_mode_context(mode, grad=False))
            return net(inp)

    return run


@contextlib.contextmanager
def _patched_senorm() -> Iterator[None]:
    original = SENorm3d.forward
    SENorm3d.forward = _textbook_senorm_forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        SENorm3d.forward = original  # type: ignore[method-assign]


def _time(fn: Callable[[], torch.Tensor], reps: int) -> tuple[float, float, torch.Tensor]:
    times = []
    with PeakRSS() as mem:
        out = fn()  # warm-up (oneDNN primitive creation, compilation); counts for the peak memory
        for _ in range(reps):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    return min(times), mem.delta_gb, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=144, help="cube side (multiple of 16)")
    parser.add_argument("--filters", type=int, default=24)
    parser.add_argument("--reps", type=int, default=2, help="timed repetitions (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backward", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--modes",
        default="all",
        help="comma-separated subset of forward modes by index (0 = fp32 no_grad, the reference), e.g. 0,1,2,4",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    size = args.size
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, input 1×2×{size}³, f={args.filters}"
    )
    mm32 = matmul_gflops(4096, torch.float32)
    mm16 = matmul_gflops(4096, torch.bfloat16)
    print(f"matmul 4096²: fp32 {mm32:.0f} GFLOP/s, bf16 {mm16:.0f} GFLOP/s")
    fwd_flops = count_flops(size, args.filters)
    train_flops = count_flops(size, args.filters, backward=True)
    print(f"model FLOPs: forward {fwd_flops / 1e9:.0f} G, forward+backward {train_flops / 1e9:.0f} G")

    model = SENormUNet(n_filters=args.filters).eval()
    x = torch.randn(1, 2, size, size, size)

    modes = [
        Mode("fp32 no_grad", inference_mode=False),
        Mode("fp32 no_grad, unfused SE-norm", inference_mode=False, textbook=True),
        Mode("fp32 inference_mode"),
        Mode("fp32 channels_last_3d", channels_last=True),
        Mode("bf16 autocast", bf16=True),
        Mode("bf16 autocast channels_last_3d", bf16=True, channels_last=True),
        Mode("default (hecktorseg.inference auto backend)", auto=True),
    ]
    if args.compile:
        modes.append(Mode("fp32 torch.compile", compile=True))
    if args.modes != "all":
        keep = sorted({0, *(int(i) for i in args.modes.split(","))})
        modes = [modes[i] for i in keep]

    header = f"{'mode':34s} {'forward s':>9s} {'GFLOP/s':>8s} {'% mm32':>7s} {'peak GB':>8s} {'max|Δp|':>8s} {'Dice':>7s}"
    runners: list[Callable[[], torch.Tensor]] = []
    for mode in modes:
        runners.append(_make_runner(model, x, mode))
    # Interleave the modes round by round (the machine may be shared: take each mode's best time).
    best = [float("inf")] * len(modes)
    peak = [0.0] * len(modes)
    outputs: list[torch.Tensor] = []
    for i, run in enumerate(runners):  # warm-up round, also gives the outputs and the peak memory
        with PeakRSS() as mem:
            outputs.append(run().float())
        peak[i] = mem.delta_gb
    for _ in range(args.reps):
        for i, run in enumerate(runners):
            t0 = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - t0)
    print("\nforward (inference)\n" + header)
    reference = probabilities(outputs[0])
    for mode, seconds, mem_gb, out in zip(modes, best, peak, outputs, strict=True):
        prob = probabilities(out)
        diff = float((prob - reference).abs().max())
        a, b = prob > 0.5, reference > 0.5
        dice = float(2 * (a & b).sum() / max(1, int(a.sum() + b.sum())))
        gflops = fwd_flops / seconds / 1e9
        print(
            f"{mode.name:34s} {seconds:9.2f} {gflops:8.0f} {100 * gflops / mm32:6.0f}% {mem_gb:8.2f} "
            f"{diff:8.1e} {dice:7.4f}",
            flush=True,
        )
    del outputs, runners
    model.to(memory_format=torch.contiguous_format)

    if args.backward:
        print(
            "\nforward + backward (training step, batch 1)\n"
            + f"{'mode':34s} {'time s':>9s} {'GFLOP/s':>8s} {'peak GB':>8s}"
        )
        model.train()
        target = (torch.rand(1, 1, size, size, size) > 0.5).float()
        for mode in [m for m in modes if m.name in TRAIN_MODES]:
            seconds, mem_gb, _ = _time(_make_train_step(model, x, target, mode), max(1, args.reps - 1))
            print(
                f"{mode.name.replace(' no_grad', ''):34s} {seconds:9.2f} {train_flops / seconds / 1e9:8.0f} "
                f"{mem_gb:8.2f}",
                flush=True,
            )


def _make_train_step(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, mode: Mode
) -> Callable[[], torch.Tensor]:
    fmt = torch.channels_last_3d if mode.channels_last else torch.contiguous_format
    inp = x.contiguous(memory_format=fmt)

    def step() -> torch.Tensor:
        model.to(memory_format=fmt)
        model.zero_grad(set_to_none=True)
        with _mode_context(mode, grad=True):
            out = model(inp)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), target)
        loss.backward()
        return loss.detach()

    return step


TRAIN_MODES = ("fp32 no_grad", "fp32 channels_last_3d", "bf16 autocast", "bf16 autocast channels_last_3d")


if __name__ == "__main__":
    main()
