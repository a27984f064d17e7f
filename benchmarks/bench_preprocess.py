"""Benchmark: hecktorseg preprocessing vs the original crop-then-resample, per case.

Writes a realistic synthetic case (CT 512×512×100 at 0.98×0.98×3 mm, PET 192×192×92
at 3.65×3.65×3.27 mm, a GTV mask on the CT grid; float32 NIfTI, gzip) to a temporary
folder, then times side by side in this process (interleaved repeats, median):

* ``original``  — SimpleITK one image at a time, the way the original code did it: read,
  crop each image to the box (corner rounded to its own voxels), resample the CT crop
  to 1 mm 144³ (linear), PET (linear) and mask (nearest) onto it, write.
* ``ours``      — :func:`hecktorseg.preprocessing.preprocess_case` (read with validation:
  NaN/truncation/label checks, world-coordinate resampling, −1024 HU fill) + write.
* ``ours+manifest`` — :func:`~hecktorseg.preprocessing.preprocess_dataset` for the one case
  (adds SHA-256 checksums and the manifest), ``force=True``.
* and both resampling steps alone on images already in memory.

Peak memory (max RSS) of each end-to-end variant is measured in a fresh child process.

    python benchmarks/bench_preprocess.py            # realistic size
    python benchmarks/bench_preprocess.py --quick    # tiny, seconds (smoke run)
    python benchmarks/bench_preprocess.py --ct-size 256,256,60 --repeats 5
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from hecktorseg.io import BBox, Case, Geometry, write_image
from hecktorseg.preprocessing import PreprocessConfig, preprocess_case, preprocess_dataset, preprocess_images

OUT_SPACING = (1.0, 1.0, 1.0)
OUT_SIZE = (144, 144, 144)


def _grid(size: tuple[int, int, int], spacing: tuple[float, float, float], centre: np.ndarray) -> Geometry:
    origin = centre - (np.asarray(size) - 1) / 2 * np.asarray(spacing)
    return Geometry(size=size, spacing=spacing, origin=tuple(origin))


def _phantom(geo: Geometry, kind: str, rng: np.random.Generator) -> sitk.Image:
    """Body ellipse with noise (CT HU / PET SUV) or a sphere mask, generated slice by slice."""
    nx, ny, nz = geo.size
    x = geo.origin[0] + np.arange(nx) * geo.spacing[0]
    y = geo.origin[1] + np.arange(ny) * geo.spacing[1]
    z = geo.origin[2] + np.arange(nz) * geo.spacing[2]
    yy, xx = np.meshgrid(y, x, indexing="ij")
    body = (xx / 180.0) ** 2 + (yy / 120.0) ** 2 <= 1.0
    dtype = np.uint8 if kind == "mask" else np.float32
    array = np.empty((nz, ny, nx), dtype=dtype)
    for k, zk in enumerate(z):
        if kind == "ct":
            sl = np.where(body, 40.0, -1000.0) + rng.normal(0, 20, size=body.shape)
        elif kind == "pet":
            sl = np.where(body, 1.0, 0.05) + np.abs(rng.normal(0, 0.1, size=body.shape))
            sl[(xx - 10) ** 2 + (yy + 20) ** 2 + (zk - 5) ** 2 <= 15**2] = 12.0
        else:
            sl = ((xx - 10) ** 2 + (yy + 20) ** 2 + (zk - 5) ** 2 <= 15**2).astype(np.uint8)
        array[k] = sl
    image = sitk.GetImageFromArray(array)
    return geo.apply_to(image)


def make_case(folder: Path, ct_size: tuple[int, int, int], pet_size: tuple[int, int, int]) -> Case:
    """Write the synthetic case and return its :class:`Case` (box 144 mm around the tumour)."""
    rng = np.random.default_rng(0)
    ct_geo = _grid(ct_size, (0.98, 0.98, 3.0), np.zeros(3))
    pet_geo = _grid(pet_size, (3.65, 3.65, 3.27), np.array([1.3, -2.1, 4.0]))
    paths = {k: folder / f"BENCH001_{k}.nii.gz" for k in ("ct", "pt", "ct_gtvt")}
    sitk.WriteImage(_phantom(ct_geo, "ct", rng), str(paths["ct"]), True)
    sitk.WriteImage(_phantom(pet_geo, "pet", rng), str(paths["pt"]), True)
    sitk.WriteImage(_phantom(ct_geo, "mask", rng), str(paths["ct_gtvt"]), True)
    extent = np.asarray(OUT_SPACING) * np.asarray(OUT_SIZE)
    box = BBox.from_center((10.0 + 0.37, -20.0 - 0.41, 5.0 + 0.29), extent)
    return Case("BENCH001", "BENCH", paths["ct"], paths["pt"], paths["ct_gtvt"], bbox=box)


# -- the original way -----------------------------------------------------------------------
def _crop(image: sitk.Image, box: BBox) -> sitk.Image:
    lo = image.TransformPhysicalPointToIndex(tuple(float(v) for v in box.lower))
    hi = image.TransformPhysicalPointToIndex(tuple(float(v) for v in box.upper))
    size = image.GetSize()
    lo = [max(0, min(v, s - 1)) for v, s in zip(lo, size, strict=True)]
    hi = [max(a + 1, min(v, s)) for a, v, s in zip(lo, hi, size, strict=True)]
    return image[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]


def original_resample(
    ct: sitk.Image, pet: sitk.Image, mask: sitk.Image, box: BBox
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """Crop each image to the box, resample the CT crop, then PET and mask onto it (padding 0)."""
    ct_c, pet_c, mask_c = _crop(ct, box), _crop(pet, box), _crop(mask, box)
    ct_r = sitk.Resample(
        ct_c,
        OUT_SIZE,
        sitk.Transform(),
        sitk.sitkLinear,
        ct_c.GetOrigin(),
        OUT_SPACING,
        ct_c.GetDirection(),
        0.0,
    )
    pet_r = sitk.Resample(pet_c, ct_r, sitk.Transform(), sitk.sitkLinear, 0.0)
    mask_r = sitk.Resample(mask_c, ct_r, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return ct_r, pet_r, mask_r


def original_end_to_end(case: Case, out: Path) -> None:
    """Read, crop, resample, write — one image at a time, as the original script."""
    assert case.label_path is not None and case.bbox is not None
    ct = sitk.ReadImage(str(case.ct_path))
    pet = sitk.ReadImage(str(case.pet_path))
    mask = sitk.ReadImage(str(case.label_path))
    ct_r, pet_r, mask_r = original_resample(ct, pet, mask, case.bbox)
    out.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(ct_r, str(out / "ct.nii.gz"), True)
    sitk.WriteImage(pet_r, str(out / "pt.nii.gz"), True)
    sitk.WriteImage(mask_r, str(out / "gtvt.nii.gz"), True)


# -- ours -----------------------------------------------------------------------------------
CONFIG = PreprocessConfig(spacing=OUT_SPACING, size=OUT_SIZE)


def ours_end_to_end(case: Case, out: Path) -> None:
    """preprocess_case (reading with validation) + atomic writes."""
    result = preprocess_case(case, CONFIG)
    write_image(result.ct, out / "ct.nii.gz")
    write_image(result.pet, out / "pt.nii.gz")
    assert result.label is not None
    write_image(result.label, out / "gtvt.nii.gz")


def ours_dataset(case: Case, out: Path) -> None:
    """preprocess_dataset for one case: adds checksums, the record and the manifest."""
    report = preprocess_dataset([case], out, CONFIG, force=True)
    assert report.ok, report.failed


VARIANTS: dict[str, Callable[[Case, Path], None]] = {
    "original": original_end_to_end,
    "ours": ours_end_to_end,
    "ours+manifest": ours_dataset,
}


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM on Linux: not inherited across exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def _child_peak(name: str, case: Case, out: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    before = _peak_rss_mib()
    VARIANTS[name](case, Path(out))
    after = _peak_rss_mib()
    queue.put((after, after - before))


def peak_memory_mib(name: str, case: Case, out: Path) -> tuple[float, float]:
    """(peak RSS, growth over the post-import RSS) in MiB of one run in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_peak, args=(name, case, str(out), queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join()
    return result  # type: ignore[no-any-return]


def _triplet(text: str) -> tuple[int, int, int]:
    values = [int(v) for v in text.split(",")]
    if len(values) == 1:
        values *= 3
    a, b, c = values
    return a, b, c


def main(argv: list[str] | None = None) -> None:
    logging.getLogger("hecktorseg").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny case (CT 128×128×30), 1 repeat: a smoke run"
    )
    parser.add_argument("--ct-size", type=_triplet, default=(512, 512, 100), help="CT voxels x,y,z")
    parser.add_argument("--pet-size", type=_triplet, default=(192, 192, 92), help="PET voxels x,y,z")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per variant (median reported)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    args = parser.parse_args(argv)
    if args.quick:
        args.ct_size, args.pet_size, args.repeats = (128, 128, 30), (48, 48, 30), 1

    with tempfile.TemporaryDirectory(prefix="hecktorseg-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        case = make_case(root, args.ct_size, args.pet_size)
        print(
            f"case: CT {args.ct_size} at 0.98×0.98×3 mm, PET {args.pet_size} at 3.65×3.65×3.27 mm "
            f"(written in {time.perf_counter() - t0:.1f} s); output {OUT_SIZE} at {OUT_SPACING} mm; "
            f"SimpleITK threads {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}"
        )
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for rep in range(args.repeats):
            for name, fn in VARIANTS.items():
                t, c = time.perf_counter(), time.process_time()
                fn(case, root / f"out-{name}-{rep}")
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)

        # resampling only, images already in memory
        ct = sitk.ReadImage(str(case.ct_path), sitk.sitkFloat32)
        pet = sitk.ReadImage(str(case.pet_path), sitk.sitkFloat32)
        mask = sitk.ReadImage(str(case.label_path), sitk.sitkUInt8)
        assert case.bbox is not None
        mem_times: dict[str, list[float]] = {"original (resample only)": [], "ours (resample only)": []}
        for _ in range(max(3, args.repeats)):
            for name, run in (
                ("original (resample only)", lambda: original_resample(ct, pet, mask, case.bbox)),
                (
                    "ours (resample only)",
                    lambda: preprocess_images(ct, pet, mask, CONFIG, table_bbox=case.bbox),
                ),
            ):
                t, c = time.perf_counter(), time.process_time()
                run()
                mem_times[name].append(time.perf_counter() - t)
                cpu.setdefault(name, []).append(time.process_time() - c)

        peaks: dict[str, tuple[float, float]] = {}
        if not args.no_memory:
            for name in VARIANTS:
                peaks[name] = peak_memory_mib(name, case, root / f"mem-{name}")

        print()
        print(
            f"{'variant':<26} {'wall s/case':>12} {'min':>7} {'CPU s/case':>11} "
            f"{'peak RSS MiB':>13} {'RSS growth MiB':>15}"
        )
        print("-" * 89)
        for name, values in {**times, **mem_times}.items():
            peak = peaks.get(name)
            peak_txt = (f"{peak[0]:13.0f} {peak[1]:15.0f}") if peak else f"{'-':>13} {'-':>15}"
            print(
                f"{name:<26} {statistics.median(values):12.3f} {min(values):7.3f} "
                f"{statistics.median(cpu[name]):11.3f} {peak_txt}"
            )


if __name__ == "__main__":
    main()
