"""Benchmark ``hecktorseg predict``: seconds per case and peak memory, ours vs a plain eager loop.

Five variants, each in its own process (so peak memory is per variant):

* ``ours-1``: :class:`hecktorseg.inference.Predictor` with one model, loaded once,
  ``inference_mode``, the backend and precision ``--backend`` / ``--precision`` choose
  (``auto``: the defaults of ``hecktorseg predict``), through :func:`predict_dataset`.
* ``ours-tta``: the same with test-time mirroring (8 flips).
* ``ours-ens``: the same with an ensemble of ``--models`` models and test-time mirroring (8 flips).
* ``plain-1`` / ``plain-ens``: what the original code did — an eager fp32 loop that reloads
  every checkpoint for every case (``torch.load`` + ``load_state_dict``) under ``no_grad``,
  with SimpleITK crop and resample, and the mask written on the network's grid (no mapping
  back onto the CT grid, which ``ours`` does).

Every variant includes reading, preprocessing and writing the mask. ``--rounds N`` runs the
variant list N times, interleaved (A, B, A, B), to see through a shared machine's load.
The models have random weights (speed does not depend on them). The network grid is
``--size``³ voxels over the 144 mm box (``--size 144`` is the paper's 1 mm grid; ensembles at
144³ take minutes per case on 2 CPU threads, hence the smaller default).

Usage::

    python benchmarks/bench_predict.py                       # 32³, 2 cases, 8-model ensemble
    python benchmarks/bench_predict.py --size 144 --cases 2  # the paper's grid
    python benchmarks/bench_predict.py --variants ours-1 plain-1 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("ours-1", "plain-1", "ours-tta", "ours-ens", "plain-ens")


def _setup(work: Path, args: argparse.Namespace) -> tuple[Path, list[Path]]:
    import torch

    from hecktorseg.config import to_dict
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.models import build_model, save_checkpoint
    from hecktorseg.preprocessing import PreprocessConfig

    data = work / "data"
    if not data.exists():
        write_synthetic_dataset(data, n_cases=args.cases, edition="2020", seed=0)
    side = 144.0 / args.size
    config = PreprocessConfig(spacing=(side, side, side), size=(args.size, args.size, args.size))
    paths = []
    for k in range(args.models):
        path = work / f"model_{k}.pt"
        if not path.exists():
            torch.manual_seed(k)
            model = build_model("senorm_unet", n_filters=args.filters)
            save_checkpoint(path, model, metadata={"preprocess": to_dict(config)})
        paths.append(path)
    return data, paths


def _peak_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def _run_ours(
    data: Path, out: Path, paths: list[Path], tta: bool, args: argparse.Namespace
) -> dict[str, Any]:
    from hecktorseg.inference import Predictor, predict_dataset

    start = time.perf_counter()
    predictor = Predictor.from_checkpoints(
        paths, device="cpu", tta=tta, precision=args.precision, backend=args.backend, tta_batch=args.tta_batch
    )
    load = time.perf_counter() - start
    report = predict_dataset(data, out, predictor, force=True)
    total = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"cases failed: {report.failed}")
    return {
        "load_s": load,
        "per_case_s": list(report.seconds),
        "total_s": total,
        "precision": f"{predictor.runtime.backend} {predictor.runtime.precision}",
    }


def _run_plain(
    data: Path, out: Path, paths: list[Path], tta: bool, args: argparse.Namespace
) -> dict[str, Any]:
    """The original's way: reload every model for every case, eager fp32 under no_grad."""
    import numpy as np
    import SimpleITK as sitk
    import torch

    from hecktorseg.config import from_dict
    from hecktorseg.io import array_to_image, discover_cases, write_image
    from hecktorseg.models import build_model
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_case, stack_channels

    mirrors = [()] + ([(2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)] if tta else [])
    start = time.perf_counter()
    seconds = []
    for case in discover_cases(data):
        t0 = time.perf_counter()
        probs = None
        config: PreprocessConfig | None = None
        x = None
        pre = None
        for path in paths:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            if config is None:
                config = from_dict(PreprocessConfig, ckpt["metadata"]["preprocess"])
                pre = preprocess_case(case, config)
                arr = stack_channels(
                    sitk.GetArrayViewFromImage(pre.ct),
                    sitk.GetArrayViewFromImage(pre.pet),
                    config,
                    pre.pet_fov,
                )
                x = torch.from_numpy(arr)[None]
            model = build_model(ckpt["model"]["name"], **ckpt["model"]["kwargs"])
            model.load_state_dict(ckpt["state_dict"])
            model.eval()
            assert x is not None
            with torch.no_grad():
                for dims in mirrors:
                    xin = torch.flip(x, dims) if dims else x
                    p = torch.sigmoid(model(xin))
                    p = torch.flip(p, dims) if dims else p
                    probs = p if probs is None else probs + p
        assert probs is not None and pre is not None
        mean = (probs / (len(paths) * len(mirrors)))[0, 0].numpy()
        # the original wrote the mask on the network's reference grid (no mapping back)
        mask = (mean > 0.5).astype(np.uint8)
        write_image(array_to_image(mask, pre.reference), out / f"{case.patient_id}.nii.gz")
        seconds.append(time.perf_counter() - t0)
    return {"load_s": 0.0, "per_case_s": seconds, "total_s": time.perf_counter() - start, "precision": "fp32"}


def _worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    data, paths = _setup(work, args)
    variant = args.worker
    ens = variant.endswith("-ens")
    tta = ens or variant.endswith("-tta")
    chosen = paths if ens else paths[:1]
    out = work / f"out_{variant}"
    runner = _run_ours if variant.startswith("ours") else _run_plain
    result = runner(data, out, chosen, tta, args)
    result.update(variant=variant, models=len(chosen), tta=tta, peak_rss_mib=_peak_mib())
    print("RESULT " + json.dumps(result))


REFERENCE_MATMUL_GFLOPS = 310.0
"""A 4096² float32 matmul on the 2-core machine where the targets of these benchmarks were set."""


def _matmul_gflops(threads: int) -> float:
    """The machine's speed today: median GFLOP/s of a 4096² float32 matrix product (5 runs)."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(4096, 4096)
    b = torch.randn(4096, 4096)
    torch.mm(a, b)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * 4096**3 / sorted(times)[2] / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=32, help="network grid side in voxels (144 = paper)")
    parser.add_argument("--cases", type=int, default=2, help="synthetic cases to predict")
    parser.add_argument("--models", type=int, default=8, help="models in the ensemble")
    parser.add_argument("--filters", type=int, default=24, help="SE-norm U-Net filters (24 = paper)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="ours only")
    parser.add_argument(
        "--backend", default="auto", choices=["auto", "torch", "openvino", "onnxruntime"], help="ours only"
    )
    parser.add_argument("--tta-batch", type=int, default=1, help="ours only: mirrorings per batch")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the variants, interleaved")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size % 16:
        parser.error("--size must be a multiple of 16")
    if args.worker:
        _worker(args)
        return
    calibration = [_matmul_gflops(args.threads)]
    print(
        f"machine: 4096² float32 matmul {calibration[0]:.0f} GFLOP/s on {args.threads} threads "
        f"(the issue's targets were set where it ran at about {REFERENCE_MATMUL_GFLOPS:.0f})"
    )
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        results = []
        for variant in list(args.variants) * args.rounds:
            cmd = [sys.executable, __file__, "--worker", variant, "--work", tmp]
            cmd += ["--size", str(args.size), "--cases", str(args.cases), "--models", str(args.models)]
            cmd += [
                "--filters",
                str(args.filters),
                "--threads",
                str(args.threads),
                "--precision",
                args.precision,
                "--backend",
                args.backend,
                "--tta-batch",
                str(args.tta_batch),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{variant} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            result = json.loads(lines[-1][len("RESULT ") :])
            results.append(result)
            per_case = result["per_case_s"]
            # the first case of "ours" carries one-off warm-up; report the mean of the rest when possible
            steady = per_case[1:] if len(per_case) > 1 else per_case
            print(
                f"{variant:10s} {time.strftime('%H:%M:%S')} load-avg {os.getloadavg()[0]:.1f} models={result['models']} tta={result['tta']!s:5s} "
                f"runtime={result['precision']} load={result['load_s']:.1f}s "
                f"per-case={sum(per_case) / len(per_case):.2f}s (steady {sum(steady) / len(steady):.2f}s) "
                f"total={result['total_s']:.1f}s peak={result['peak_rss_mib']:.0f} MiB"
            )
        calibration.append(_matmul_gflops(args.threads))
        print(f"machine after the runs: {calibration[1]:.0f} GFLOP/s")
        if args.json is not None:
            meta = {
                k: getattr(args, k)
                for k in (
                    "size",
                    "cases",
                    "models",
                    "filters",
                    "threads",
                    "precision",
                    "backend",
                    "tta_batch",
                )
            }
            machine = {"matmul_gflops": calibration, "reference_matmul_gflops": REFERENCE_MATMUL_GFLOPS}
            args.json.write_text(
                json.dumps({"settings": meta, "machine": machine, "results": results}, indent=2) + "\n"
            )


if __name__ == "__main__":
    main()
