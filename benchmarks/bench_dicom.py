"""Benchmark: indexing a DICOM folder and importing one PET/CT patient (issue 19's numbers).

* ``index``  — :func:`hecktorseg.dicom.index_dicom` over ``--files`` small single-frame files
  (headers only; 200 files per series, 2 series per patient); targets: 10,000 files in ≤ 15 s.
* ``import`` — :func:`hecktorseg.dicom.import_dicom` of one patient: CT ``--ct-size``
  (default 512×512×200), PET ``--pet-size`` (default 200×200×300, Bq/ml with per-slice
  slopes) and an RTSTRUCT, to a HECKTOR 2025 folder (gzip NIfTI); target ≤ 10 s. Its parts
  (stacking the CT, stacking the PET, rasterising the RTSTRUCT) are timed on their own too.

Not a test: nothing is asserted. The machine's load average is printed next to the times.

    python benchmarks/bench_dicom.py            # the issue's sizes
    python benchmarks/bench_dicom.py --quick    # small, seconds (smoke run)
    python benchmarks/bench_dicom.py --files 2000 --ct-size 256,256,100 --pet-size 128,128,150
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.uid import generate_uid

from hecktorseg.dicom import (
    StudyStyle,
    import_dicom,
    index_dicom,
    load_series,
    rtstruct_to_labels,
    select_series,
    write_dicom_study,
)
from hecktorseg.io import Geometry, array_to_image


def _sizes(text: str) -> tuple[int, int, int]:
    x, y, z = (int(v) for v in text.split(","))
    return (x, y, z)


def _images(
    ct_size: tuple[int, int, int], pet_size: tuple[int, int, int]
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """CT (HU), PET (SUV) and a spherical label, on grids covering about the same 500 mm field."""
    rng = np.random.default_rng(0)
    ct_geom = Geometry(
        size=ct_size, spacing=(500 / ct_size[0], 500 / ct_size[1], 2.0), origin=(-250, -250, 0)
    )
    pet_geom = Geometry(
        size=pet_size,
        spacing=(500 / pet_size[0], 500 / pet_size[1], 400 / pet_size[2]),
        origin=(-250, -250, 0),
    )
    nz, ny, nx = ct_geom.shape_zyx
    z, y, x = np.ogrid[:nz, :ny, :nx]
    r = (
        ((x - nx / 2) / (nx / 10)) ** 2
        + ((y - ny / 2) / (ny / 10)) ** 2
        + ((z - nz / 2) / max(nz / 8, 1)) ** 2
    )
    ct = np.where(r < 1, 40.0, -1000.0) + rng.normal(0, 10, (nz, ny, nx))
    label = (r < 1).astype(np.uint8)
    pet = rng.gamma(2.0, 0.5, pet_geom.shape_zyx)
    return (
        array_to_image(ct.astype(np.float32), ct_geom),
        array_to_image(pet.astype(np.float32), pet_geom),
        array_to_image(label, ct_geom),
    )


def _many_files(root: Path, n: int) -> None:
    """``n`` small CT files: 200 per series, 2 series per patient, flat, hashed names."""
    geom = Geometry(size=(64, 64, 2), spacing=(1, 1, 1))
    write_dicom_study(root / "tmpl", "T", array_to_image(np.zeros((2, 64, 64), np.float32), geom),
                      array_to_image(np.zeros((2, 64, 64), np.float32), geom), style=StudyStyle(distractors=False))  # fmt: skip
    template = pydicom.dcmread(next(p for p in (root / "tmpl").iterdir()))
    out = root / "many"
    out.mkdir()
    for i in range(n):
        if i % 200 == 0:
            series = generate_uid()
            if i % 400 == 0:
                study, patient = generate_uid(), f"PAT{i // 400:05d}"
        ds = copy.deepcopy(template)
        ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.ImagePositionPatient = [0, 0, i % 200]
        pydicom.dcmwrite(out / f"{i:08d}", ds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--files", type=int, default=10_000, help="files to index")
    parser.add_argument("--ct-size", default="512,512,200", help="CT x,y,z")
    parser.add_argument("--pet-size", default="200,200,300", help="PET x,y,z")
    args = parser.parse_args()
    if args.quick:
        args.files, args.ct_size, args.pet_size = 400, "96,96,40", "48,48,40"
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        _many_files(root, args.files)
        print(f"wrote {args.files} files in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        index = index_dicom(root / "many")
        seconds = time.perf_counter() - t
        print(f"index: {index.n_files} files, {len(index.patients)} patients in {seconds:.2f} s "
              f"({1000 * seconds / max(index.n_files, 1):.2f} ms/file; target 10,000 in 15 s)")  # fmt: skip

        ct, pet, label = _images(_sizes(args.ct_size), _sizes(args.pet_size))
        t = time.perf_counter()
        write_dicom_study(root / "patient", "BIG", ct, pet, label, style=StudyStyle(distractors=False))
        print(
            f"wrote one patient (CT {args.ct_size}, PET {args.pet_size}) in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        report = import_dicom(root / "patient", root / "out")
        total = time.perf_counter() - t
        assert report.ok, report.failed
        big = index_dicom(root / "patient")
        choice = select_series("BIG", big.series["BIG"])
        t = time.perf_counter()
        ct_volume = load_series(choice.ct)
        t_ct = time.perf_counter() - t
        assert choice.pet is not None
        t = time.perf_counter()
        load_series(choice.pet)
        t_pet = time.perf_counter() - t
        assert choice.rtstruct is not None
        t = time.perf_counter()
        rtstruct_to_labels(pydicom.dcmread(choice.rtstruct.first.path), Geometry.from_image(ct_volume.image))
        t_rt = time.perf_counter() - t
        print(f"import one patient: {total:.2f} s (target 10 s); parts: CT stack {t_ct:.2f} s, PET stack "
              f"{t_pet:.2f} s, RTSTRUCT raster {t_rt:.2f} s; the rest is index + SUV + gzip NIfTI writes")  # fmt: skip
    print(f"load average at the start: {load:.1f} on {os.cpu_count()} CPU(s)")


if __name__ == "__main__":
    main()
