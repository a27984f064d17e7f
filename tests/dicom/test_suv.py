"""SUVbw against values computed by hand from the DICOM standard / QIBA formula (not from our code)."""

from __future__ import annotations

import math

import pydicom
import pytest
from pydicom.sequence import Sequence

from hecktorseg.dicom import suv_factor
from hecktorseg.errors import DataError

# Hand-computed: injection 2024-03-01 23:20:00, series start 2024-03-02 00:25:30 → Δt = 3930 s
# (the scan is after midnight); 2^(-3930 / 6586.2) = 0.66126379; a pixel of 1000 × slope 2.5 =
# 2500 Bq/ml in a 72.5 kg patient given 310 MBq:
# SUV = 2500 × 72500 / (3.1e8 × 0.66126379) = 0.88418182.
SUV_START = 0.88418182
# ADMIN: no decay factor: 2500 × 72500 / 3.1e8 = 0.58467742.
SUV_ADMIN = 0.58467742


def pet(decay: str = "START", *, start_datetime: bool = True, **changes: object) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.Modality = "PT"
    ds.Units = "BQML"
    ds.DecayCorrection = decay
    ds.PatientWeight = "72.5"
    ds.SeriesDate, ds.SeriesTime = "20240302", "002530"
    ds.AcquisitionDate, ds.AcquisitionTime = "20240302", "002530"
    ds.Manufacturer = "SIEMENS"
    item = pydicom.Dataset()
    item.RadionuclideTotalDose = "310000000"
    item.RadionuclideHalfLife = "6586.2"
    item.RadiopharmaceuticalStartTime = "232000"
    if start_datetime:
        item.RadiopharmaceuticalStartDateTime = "20240301232000"
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    for key, value in changes.items():
        setattr(ds, key, value)
    return ds


def test_start_after_midnight_matches_the_hand_computed_value() -> None:
    inputs = suv_factor([pet("START")])
    assert inputs.decay_seconds == pytest.approx(3930.0)
    assert 2500.0 * inputs.factor == pytest.approx(SUV_START, rel=1e-7)
    # and the same from the QIBA formula written out here
    assert inputs.factor == pytest.approx(72.5 * 1000 / (3.1e8 * math.pow(2.0, -3930 / 6586.2)), rel=1e-12)


def test_start_time_only_takes_the_injection_on_the_day_before() -> None:
    inputs = suv_factor([pet("START", start_datetime=False)])
    assert 2500.0 * inputs.factor == pytest.approx(SUV_START, rel=1e-7)
    assert inputs.injection == "2024-03-01T23:20:00"
    assert any("day before" in w for w in inputs.warnings)


def test_admin_has_no_decay_factor() -> None:
    inputs = suv_factor([pet("ADMIN")])
    assert 2500.0 * inputs.factor == pytest.approx(SUV_ADMIN, rel=1e-7)
    assert inputs.decay_factor == 1.0


def test_series_time_after_the_first_acquisition_uses_the_acquisition_qiba() -> None:
    # post-processing rewrote SeriesTime to 01:00; the earliest acquisition (00:25:30) is the start
    inputs = suv_factor([pet("START", SeriesTime="010000")])
    assert 2500.0 * inputs.factor == pytest.approx(SUV_START, rel=1e-7)


def test_units_gml_is_already_suv_and_counts_need_a_factor() -> None:
    assert suv_factor([pet(Units="GML")]).factor == 1.0
    with pytest.raises(DataError, match="CNTS"):
        suv_factor([pet(Units="CNTS")])
    philips = pet(Units="CNTS", Manufacturer="Philips Medical Systems")
    philips.add_new((0x7053, 0x0010), "LO", "Philips PET Private Group")
    philips.add_new((0x7053, 0x1000), "DS", "0.000412")
    inputs = suv_factor([philips])
    assert inputs.factor == pytest.approx(0.000412)
    assert inputs.source == "Philips SUV scale factor"


@pytest.mark.parametrize(
    ("remove", "tag"),
    [("PatientWeight", "PatientWeight"), ("dose", "RadionuclideTotalDose")],
)
def test_missing_weight_or_dose_names_the_tag(remove: str, tag: str) -> None:
    ds = pet()
    if remove == "PatientWeight":
        del ds.PatientWeight
    else:
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
    with pytest.raises(DataError, match=tag):
        suv_factor([ds])


def test_weight_and_factor_overrides() -> None:
    ds = pet()
    del ds.PatientWeight
    assert suv_factor([ds], patient_weight=72.5).factor * 2500 == pytest.approx(SUV_START, rel=1e-7)
    assert suv_factor([ds], factor=0.5).factor == 0.5


def test_unknown_decay_correction_is_an_error() -> None:
    with pytest.raises(DataError, match="DecayCorrection"):
        suv_factor([pet("WEIRD")])
