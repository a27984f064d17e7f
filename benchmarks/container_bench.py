"""Benchmark the Grand Challenge container: seconds and peak memory per case, as the image runs it.

Four variants, each in its own process (a fresh process per case is what Grand Challenge
does; the peak resident memory is that process's):

* ``1``: one model; ``1-tta``: one model with test-time mirroring (8 flips);
* ``ens``: the paper's ensemble of ``--models`` (8) models; ``ens-tta``: the same with TTA.

Each process loads the checkpoints and runs :func:`hecktorseg.container.container_predict`
on a Grand Challenge input folder (``images/ct/*.mha``, ``images/pet/*.mha``, ``ehr.json``)
holding one synthetic GTVp + GTVn phantom: reading, preprocessing, the models, mapping the
class probabilities back onto the CT grid and writing ``output.mha`` all count. The
models have random weights (speed does not depend on them) and 3 outputs
(background / GTVp / GTVn). The network grid is ``--size`` × ``--size`` × z voxels over a
144 × 144 × 176 mm box (z = ``--size`` × 176/144, rounded up to a multiple of 16), the
default box of the GTVp + GTVn editions; ``--size 144`` is the 1 mm grid (144 × 144 × 176).

Usage::

    python benchmarks/container_bench.py --quick            # seconds: 32-voxel grid, f = 4, 2 models
    python benchmarks/container_bench.py                     # full size: 1 mm grid, f = 24, 8 models
    python benchmarks/container_bench.py --variants 1 1-tta --json results.json

The full-size run takes a long time on 2 cores (the 8-model ensemble with TTA is 64
forward passes of the 1 mm grid); the organisers allow 10 minutes and 16 GB per case.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("1", "1-tta", "ens", "ens-tta")
LIMIT_S, LIMIT_GB = 600.0, 16.0  # the organisers' limits per case (Task 1)


def _z_side(size: int) -> int:
    return -(-round(size * 176 / 144) // 16) * 16


def _setup(work: Path, args: argparse.Namespace) -> tuple[Path, list[Path]]:
    import torch

    from hecktorseg.config import to_dict
    from hecktorseg.data.synthetic import SyntheticConfig, make_phantom
    from hecktorseg.io import write_image
    from hecktorseg.models import build_model, save_checkpoint
    from hecktorseg.preprocessing import PreprocessConfig

    gc_input = work / "input"
    if not gc_input.exists():
        base = SyntheticConfig()
        fov_ct = [n * s for n, s in zip(base.ct_size, base.ct_spacing, strict=True)]
        fov_pet = [n * s for n, s in zip(base.pet_size, base.pet_spacing, strict=True)]
        ct_size, pet_size = tuple(args.ct_size), tuple(args.pet_size)
        config = SyntheticConfig(
            ct_size=ct_size,
            ct_spacing=tuple(f / n for f, n in zip(fov_ct, ct_size, strict=True)),
            pet_size=pet_size,
            pet_spacing=tuple(f / n for f, n in zip(fov_pet, pet_size, strict=True)),
        )
        phantom = make_phantom("BENCH-001", seed=0, config=config, with_nodes=True)
        write_image(phantom.ct, gc_input / "images" / "ct" / "ct.mha")
        write_image(phantom.pet, gc_input / "images" / "pet" / "pet.mha")
        (gc_input / "ehr.json").write_text('{"Age": 60}\n')
    side = 144.0 / args.size
    z = _z_side(args.size)
    pre = PreprocessConfig(spacing=(side, side, 176.0 / z), size=(args.size, args.size, z))
    paths = []
    for k in range(args.models):
        path = work / f"model_{k}.pt"
        if not path.exists():
            torch.manual_seed(k)
            model = build_model("senorm_unet", n_filters=args.filters, n_classes=3)
            save_checkpoint(path, model, metadata={"preprocess": to_dict(pre)})
        paths.append(path)
    return gc_input, paths


def _peak_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def _worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    gc_input, paths = _setup(work, args)
    variant = args.worker
    if variant == "setup":
        return
    chosen = paths if variant.startswith("ens") else paths[:1]
    tta = variant.endswith("-tta")
    from hecktorseg.container import container_predict
    from hecktorseg.inference import Predictor

    start = time.perf_counter()
    predictor = Predictor.from_checkpoints(chosen, device="cpu", tta=tta)
    load = time.perf_counter() - start
    container_predict(gc_input, work / f"out_{variant}", predictor=predictor)
    total = time.perf_counter() - start
    result = {
        "variant": variant,
        "models": len(chosen),
        "tta": tta,
        "forward_passes": len(chosen) * (8 if tta else 1),
        "load_s": load,
        "case_s": total,
        "peak_rss_mib": _peak_mib(),
        "precision": str(predictor.runtime),
    }
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small and fast: --size 32 --filters 4 --models 2"
    )
    parser.add_argument("--size", type=int, default=144, help="network grid side in x/y (144 = 1 mm)")
    parser.add_argument("--models", type=int, default=8, help="models in the ensemble (8 = the paper's)")
    parser.add_argument("--filters", type=int, default=24, help="SE-norm U-Net filters (24 = the paper's)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--ct-size", type=lambda t: [int(v) for v in t.split(",")], default=[512, 512, 200], help="CT x,y,z"
    )
    parser.add_argument(
        "--pet-size", type=lambda t: [int(v) for v in t.split(",")], default=[200, 200, 200], help="PET x,y,z"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.filters, args.models = 32, 4, 2
        args.ct_size, args.pet_size = [96, 96, 40], [48, 48, 40]
    if args.size % 16:
        parser.error("--size must be a multiple of 16")
    if args.worker:
        _worker(args)
        return
    passthrough = [
        "--size", str(args.size), "--models", str(args.models), "--filters", str(args.filters),
        "--threads", str(args.threads), "--ct-size", ",".join(map(str, args.ct_size)),
        "--pet-size", ",".join(map(str, args.pet_size)),
    ]  # fmt: skip
    print(
        f"grid {args.size}x{args.size}x{_z_side(args.size)}, f={args.filters}, {args.models}-model ensemble, "
        f"{args.threads} threads, CT {'x'.join(map(str, args.ct_size))}, PET {'x'.join(map(str, args.pet_size))}"
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="container_bench_") as tmp:
        # the phantom and the checkpoints are made in a process of their own, so that the
        # peak memory of each variant's process is that of predicting only
        setup = subprocess.run(
            [sys.executable, __file__, "--worker", "setup", "--work", tmp, *passthrough],
            capture_output=True,
            text=True,
            check=False,
        )
        if setup.returncode != 0:
            raise SystemExit(f"setup failed:\n{setup.stderr[-2000:]}")
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--worker", variant, "--work", tmp, *passthrough]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{variant} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            result = json.loads(lines[-1][len("RESULT ") :])
            results.append(result)
            fits = result["case_s"] <= LIMIT_S and result["peak_rss_mib"] / 1024 <= LIMIT_GB
            print(
                f"{variant:8s} {result['models']} model(s), TTA {'on ' if result['tta'] else 'off'}: "
                f"{result['case_s']:8.1f} s/case (load {result['load_s']:.1f} s, {result['forward_passes']} "
                f"forward passes), peak {result['peak_rss_mib']:7.0f} MiB — "
                f"{'fits' if fits else 'EXCEEDS'} 10 min / 16 GB"
            )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
