"""Geometry and bad input: each case a clear per-patient error or a documented resampling with a warning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from hecktorseg.data import Phantom
from hecktorseg.dicom import (
    StudyStyle,
    import_dicom,
    index_dicom,
    load_series,
    select_series,
    write_dicom_study,
)
from hecktorseg.errors import DataError, GeometryError
from hecktorseg.io import image_to_array


def _ct_files(root: Path, pid: str = "P") -> list[Path]:
    series = [s for s in index_dicom(root).series[pid] if s.modality == "CT"]
    files = [f.path for f in series[0].files]
    return sorted(
        files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
    )


@pytest.fixture
def study(tmp_path: Path, phantoms: dict[str, Phantom]) -> Path:
    p = phantoms["HN-B"]
    write_dicom_study(tmp_path / "src", "P", p.ct, p.pet, None, style=StudyStyle(distractors=False))
    return tmp_path / "src"


def _edit(paths: list[Path], change: Callable[[int, pydicom.Dataset], None]) -> None:
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        change(k, ds)
        ds.save_as(path)


def _ct(root: Path):  # type: ignore[no-untyped-def]
    return load_series(select_series("P", index_dicom(root).series["P"]).ct)


def test_shuffled_instance_numbers_are_ordered_by_position(study: Path, phantoms: dict[str, Phantom]) -> None:
    numbers = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in _ct_files(study)]
    assert numbers != sorted(numbers)
    np.testing.assert_allclose(
        image_to_array(_ct(study).image), np.round(image_to_array(phantoms["HN-B"].ct))
    )


def test_missing_slice_is_an_error(study: Path) -> None:
    _ct_files(study)[7].unlink()
    with pytest.raises(GeometryError, match="1 slice\\(s\\) missing"):
        _ct(study)


def test_uneven_spacing_is_resampled_with_a_warning(study: Path) -> None:
    files = _ct_files(study)
    step = 9.8  # the tiny phantom's slice spacing

    def shift(k: int, ds: pydicom.Dataset) -> None:  # slices from k=12 on move 2 mm further
        if k >= 12:
            ipp = [float(v) for v in ds.ImagePositionPatient]
            ipp[2] += 2.0
            ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]

    before = np.asarray([pydicom.dcmread(p).pixel_array for p in files], dtype=np.float64) - 1024.0
    _edit(files, shift)
    ct = _ct(study)
    assert ct.resampled and any("uneven slice spacing" in w for w in ct.warnings)
    out = np.asarray(image_to_array(ct.image))
    assert ct.image.GetSpacing()[2] == pytest.approx(step, abs=1e-3)
    # a target between the moved slices 11 (at 11·step) and 12 (at 12·step + 2): linear weights by hand
    target = 12 * step  # index 12 of the new grid
    w = (target - 11 * step) / (step + 2.0)
    np.testing.assert_allclose(out[12], before[11] * (1 - w) + before[12] * w, atol=1e-3)


def test_gantry_tilt_is_an_error(study: Path) -> None:
    def tilt(k: int, ds: pydicom.Dataset) -> None:
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ipp[1] += k * 9.8 * np.tan(np.radians(15.0))
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]

    _edit(_ct_files(study), tilt)
    with pytest.raises(GeometryError, match="gantry tilt of about 15"):
        _ct(study)


def test_mixed_orientations_are_an_error(study: Path) -> None:
    def rotate(k: int, ds: pydicom.Dataset) -> None:
        if k == 3:
            ds.ImageOrientationPatient = ["0", "1", "0", "1", "0", "0"]

    _edit(_ct_files(study), rotate)
    with pytest.raises(GeometryError, match="different orientations"):
        _ct(study)


def test_duplicate_instances(study: Path) -> None:
    files = _ct_files(study)
    (files[5].parent / (files[5].name + "copy")).write_bytes(files[5].read_bytes())  # the same instance twice
    ct = _ct(study)
    assert any("appears twice" in w for w in ct.warnings) and ct.image.GetSize()[2] == len(files)
    ds = pydicom.dcmread(files[6])  # another instance at slice 6's position with other pixels
    ds.SOPInstanceUID = generate_uid()
    ds.PixelData = (ds.pixel_array + 5).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(files[6].parent / (files[6].name + "other"))
    with pytest.raises(GeometryError, match="two different slices at the same position"):
        _ct(study)


def test_enhanced_multiframe_is_a_per_patient_error(study: Path) -> None:
    def enhance(k: int, ds: pydicom.Dataset) -> None:
        ds.NumberOfFrames = 24

    _edit(_ct_files(study), enhance)
    report = import_dicom(study, study.parent / "out")
    assert "enhanced multi-frame" in report.failed["P"]


def test_corrupt_file_is_a_per_patient_error(study: Path) -> None:
    path = _ct_files(study)[4]
    path.write_bytes(path.read_bytes()[:-3000])  # truncated pixel data
    report = import_dicom(study, study.parent / "out")
    assert list(report.failed) == ["P"]
    assert path.name in report.failed["P"] and "\n" not in report.failed["P"]


def test_rtstruct_for_another_series_is_an_error(tmp_path: Path, phantoms: dict[str, Phantom]) -> None:
    p = phantoms["HN-A"]
    write_dicom_study(tmp_path / "src", "P", p.ct, p.pet, p.label, style=StudyStyle(distractors=False))
    index = index_dicom(tmp_path / "src")
    (rt,) = [s for s in index.series["P"] if s.modality == "RTSTRUCT"]
    ds = pydicom.dcmread(rt.first.path)
    ref = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    ref.SeriesInstanceUID = generate_uid()
    ds.save_as(rt.first.path)
    with pytest.raises(DataError, match="does not refer to the chosen CT series"):
        select_series("P", index_dicom(tmp_path / "src").series["P"])
