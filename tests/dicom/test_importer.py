"""A flat PACS-like export of two patients → a HECKTOR 2025 dataset with SUV PET and labels."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_helpers import dice
from pydicom.uid import generate_uid

from hecktorseg.data import Phantom
from hecktorseg.dicom import import_dicom, index_dicom
from hecktorseg.errors import ConfigError
from hecktorseg.io import discover_cases, image_to_array, read_image


def test_index_skips_non_dicom_and_groups_patients(flat_export: Path) -> None:
    index = index_dicom(flat_export)
    assert index.patients == ("HN-A", "HN-B")
    assert index.skipped == 2  # README.txt and a file of zeros
    assert all("." not in p.name for p in flat_export.iterdir() if p.name not in ("README.txt",))
    modalities = sorted(s.modality for s in index.series["HN-A"])
    assert modalities == ["CT", "CT", "PT", "PT", "RTSTRUCT"]  # CT + localizer, PET AC + NAC


def test_import_writes_the_2025_layout(imported: Path, phantoms: dict[str, Phantom]) -> None:
    cases = {c.patient_id: c for c in discover_cases(imported)}
    assert sorted(cases) == ["HN-A", "HN-B"]
    assert cases["HN-A"].layout is not None and cases["HN-A"].layout.value == "2025"
    for pid, phantom in phantoms.items():
        ct = read_image(imported / pid / f"{pid}__CT.nii.gz")
        np.testing.assert_allclose(ct.GetOrigin(), phantom.ct.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(ct.GetDirection(), phantom.ct.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(image_to_array(ct), np.round(image_to_array(phantom.ct)), atol=1e-3)
        label = np.asarray(image_to_array(read_image(imported / pid / f"{pid}.nii.gz")))
        truth = np.asarray(image_to_array(phantom.label))
        for value in (1, 2):
            assert dice(truth == value, label == value) >= 0.97


def test_pet_is_suv_by_hand_from_the_raw_file(imported: Path, flat_export: Path) -> None:
    """One PET voxel: stored value × that slice's slope × weight / (dose × decay), from the file's own tags."""
    index = index_dicom(flat_export)
    (pet,) = [s for s in index.series["HN-A"] if s.modality == "PT" and "ATTN" in s.first.corrected]
    slices = sorted(
        (pydicom.dcmread(f.path) for f in pet.files), key=lambda d: float(d.ImagePositionPatient[2])
    )
    k = len(slices) // 2
    ds = slices[k]
    raw = ds.pixel_array.astype(np.float64)
    y, x = np.unravel_index(np.argmax(raw), raw.shape)
    bqml = raw[y, x] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    # header values as written for HN-A: 72.5 kg, 310 MBq, F-18; injection 23:20:00, series 00:25:30 next day
    assert float(ds.PatientWeight) == 72.5 and ds.DecayCorrection == "START"
    expected = bqml * 72500.0 / (3.1e8 * math.pow(2.0, -3930.0 / 6586.2))
    suv = np.asarray(image_to_array(read_image(imported / "HN-A" / "HN-A__PT.nii.gz")))
    assert suv[k, y, x] == pytest.approx(expected, rel=1e-5)
    # ADMIN (HN-B): no decay factor
    (pet_b,) = [s for s in index.series["HN-B"] if s.modality == "PT" and "ATTN" in s.first.corrected]
    slices_b = sorted(
        (pydicom.dcmread(f.path) for f in pet_b.files), key=lambda d: float(d.ImagePositionPatient[2])
    )
    ds_b = slices_b[k]
    raw_b = ds_b.pixel_array.astype(np.float64)
    yb, xb = np.unravel_index(np.argmax(raw_b), raw_b.shape)
    suv_b = np.asarray(image_to_array(read_image(imported / "HN-B" / "HN-B__PT.nii.gz")))
    assert suv_b[k, yb, xb] == pytest.approx(
        raw_b[yb, xb] * float(ds_b.RescaleSlope) * 72500.0 / 3.1e8, rel=1e-5
    )
    slopes = {float(d.RescaleSlope) for d in slices}
    assert len(slopes) > 3  # per-slice slopes


def test_records_and_summary(imported: Path) -> None:
    record = json.loads((imported / "dicom_records" / "HN-A.json").read_text(encoding="utf-8"))
    assert record["status"] == "done"
    assert record["ct_series"]["description"] == "CT head-neck"
    assert record["pet_series"]["description"] == "PET AC"
    reasons = sorted(record["skipped_series"].values())
    assert any("localizer" in r for r in reasons) and any("attenuation" in r for r in reasons)
    assert record["rtstruct"]["roi_labels"] == {"GTV-P": 1, "GTVn_L2": 2}
    assert record["suv"]["decay_seconds"] == pytest.approx(3930.0)
    rows = list(csv.DictReader((imported / "dicom_import.csv").open(encoding="utf-8")))
    assert [r["patient_id"] for r in rows] == ["HN-A", "HN-B"]
    assert {r["status"] for r in rows} == {"done"}


def test_resume_skips_and_one_bad_patient_does_not_stop_the_others(tmp_path: Path, flat_export: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(flat_export, src)
    out = tmp_path / "out"
    assert import_dicom(src, out).done == ("HN-A", "HN-B")
    again = import_dicom(src, out)
    assert again.skipped == ("HN-A", "HN-B") and not again.done
    # break HN-B's PET: remove the dose from every file of its series
    for path in src.iterdir():
        if not path.is_file() or path.name == "README.txt":
            continue
        try:
            ds = pydicom.dcmread(path)
        except Exception:
            continue
        if ds.get("PatientID") == "HN-B" and ds.Modality == "PT":
            del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
            ds.save_as(path)
    report = import_dicom(src, out)
    assert report.skipped == ("HN-A",)
    assert list(report.failed) == ["HN-B"]
    assert "RadionuclideTotalDose" in report.failed["HN-B"] and "\n" not in report.failed["HN-B"]
    record = json.loads((out / "dicom_records" / "HN-B.json").read_text(encoding="utf-8"))
    assert record["status"] == "failed"


def test_two_ac_pets_need_a_choice(tmp_path: Path, phantoms: dict[str, Phantom]) -> None:
    from hecktorseg.dicom import ImportOptions, StudyStyle, write_dicom_study

    phantom = phantoms["HN-B"]
    write_dicom_study(
        tmp_path / "src", "X", phantom.ct, phantom.pet, None, style=StudyStyle(distractors=False)
    )
    index = index_dicom(tmp_path / "src")
    (pet,) = [s for s in index.series["X"] if s.modality == "PT"]
    second = generate_uid()
    for f in pet.files:  # a second AC PET series: a copy with a new SeriesInstanceUID
        ds = pydicom.dcmread(f.path)
        ds.SeriesInstanceUID = second
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(f.path.with_name(f.path.name + "b"))
    report = import_dicom(tmp_path / "src", tmp_path / "out")
    assert "2 candidate PT series" in report.failed["X"] and pet.uid in report.failed["X"]
    chosen = import_dicom(tmp_path / "src", tmp_path / "out", ImportOptions(pet_series=pet.uid))
    assert chosen.done == ("X",)
    record = json.loads((tmp_path / "out" / "dicom_records" / "X.json").read_text(encoding="utf-8"))
    assert record["pet_series"]["uid"] == pet.uid
    with pytest.raises(ConfigError, match="no patient"):
        import_dicom(tmp_path / "src", tmp_path / "out", ImportOptions(ct_series="1.2.3.4"))
