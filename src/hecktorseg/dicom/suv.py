r"""PET to SUV (body weight) from the header, following the DICOM standard and the QIBA FDG-PET profile.

.. math::

    \mathrm{SUV_{bw}} = \frac{C\,[\mathrm{Bq/ml}] \cdot W\,[\mathrm{g}]}
                             {D\,[\mathrm{Bq}] \cdot 2^{-\Delta t / T_{1/2}}}

with ``C`` the rescaled pixel value (each slice's RescaleSlope/Intercept), ``W`` PatientWeight
(kg × 1000), ``D`` RadionuclideTotalDose, ``T½`` RadionuclideHalfLife and ``Δt`` the time from
the injection (RadiopharmaceuticalStartDateTime, else RadiopharmaceuticalStartTime on the
series date — the day before when that time is later than the series time, i.e. a scan after
midnight) to the reference time that :data:`~hecktorseg.dicom.rules.DECAY_RULES` names for the
series' DecayCorrection: the series start for ``START`` (the earliest AcquisitionTime when the
SeriesTime is later than it, as QIBA advises), none for ``ADMIN``.
Units ``GML`` are SUV already; ``CNTS`` need a vendor factor
(:data:`~hecktorseg.dicom.rules.VENDOR_FACTORS`) or an explicit ``suv_factor``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
from collections.abc import Sequence

import attrs
import pydicom

from hecktorseg.dicom.rules import DECAY_RULES, UNITS_RULES, VENDOR_FACTORS, VendorFactor
from hecktorseg.errors import DataError

__all__ = ["SuvInputs", "suv_factor"]


@attrs.frozen
class SuvInputs:
    """How a PET series was converted to SUVbw: every input and the factor (kept in the record).

    Attributes
    ----------
    units, decay_correction
        The header values.
    factor
        Multiplier from rescaled pixel values to SUVbw (``None`` when per image; see ``per_image``).
    source
        ``formula``, ``already SUV``, a vendor factor's name, or ``suv_factor given``.
    weight_kg, dose_bq, half_life_s, injection, reference, decay_seconds, decay_factor
        The formula's inputs (``None`` where not used).
    warnings
        Notes (an injection date inferred, a vendor factor that disagrees with the formula).
    """

    units: str
    decay_correction: str
    factor: float
    source: str
    weight_kg: float | None = None
    dose_bq: float | None = None
    half_life_s: float | None = None
    injection: str | None = None
    reference: str | None = None
    decay_seconds: float | None = None
    decay_factor: float | None = None
    vendor_factor: float | None = None
    warnings: tuple[str, ...] = ()


def _parse_dt(date: str, time: str) -> dt.datetime | None:
    date, time = date.strip(), time.strip()
    if len(date) < 8 or not time:
        return None
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?", time.split("+")[0].split("-")[0])
    if match is None:
        return None
    hh, mm, ss, frac = match.groups()
    try:
        day = dt.datetime.strptime(date[:8], "%Y%m%d")
    except ValueError:
        return None
    micro = round(float(frac) * 1e6) if frac else 0
    return day + dt.timedelta(hours=int(hh), minutes=int(mm or 0), seconds=int(ss or 0), microseconds=micro)


def _number(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _vendor_value(ds: pydicom.Dataset, rule: VendorFactor) -> float | None:
    if re.search(rule.manufacturer, str(ds.get("Manufacturer", "")), re.IGNORECASE) is None:
        return None
    tag = (rule.group, rule.element)
    if tag not in ds:
        return None
    value = ds[tag].value
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00 ").decode("ascii", errors="ignore")
        parsed = _number(text)
        if parsed is None and len(value) == 8:
            parsed = float(struct.unpack("<d", value)[0])
        return parsed if parsed and parsed > 0 else None
    parsed = _number(value)
    return parsed if parsed and parsed > 0 else None


def _injection(
    ds: pydicom.Dataset, item: pydicom.Dataset, reference: dt.datetime
) -> tuple[dt.datetime, list[str]]:
    start_dt = str(item.get("RadiopharmaceuticalStartDateTime", "") or "")
    if start_dt:
        parsed = _parse_dt(start_dt[:8], start_dt[8:])
        if parsed is not None:
            return parsed, []
    start = str(item.get("RadiopharmaceuticalStartTime", "") or "")
    date = str(ds.get("SeriesDate", "") or ds.get("AcquisitionDate", "") or ds.get("StudyDate", ""))
    parsed = _parse_dt(date, start)
    if parsed is None:
        raise DataError(
            "PET: no injection time (RadiopharmaceuticalStartDateTime / RadiopharmaceuticalStartTime (0018,1072))",
            path=getattr(ds, "filename", None),
            hint="give suv_factor= to convert without it",
        )
    if parsed > reference:  # injected before midnight, scanned after
        return parsed - dt.timedelta(days=1), [
            f"injection time {start} is later than the scan; taken as the day before ({(parsed - dt.timedelta(days=1)).date()})"
        ]
    return parsed, []


def _reference(datasets: Sequence[pydicom.Dataset], decay_to: str) -> dt.datetime | None:
    first = datasets[0]
    acquisitions = [
        t
        for ds in datasets
        if (t := _parse_dt(str(ds.get("AcquisitionDate", "")), str(ds.get("AcquisitionTime", ""))))
    ]
    if decay_to == "acquisition":
        return min(acquisitions) if acquisitions else None
    series = _parse_dt(str(first.get("SeriesDate", "")), str(first.get("SeriesTime", "")))
    if series is not None and acquisitions and series > min(acquisitions):
        return min(acquisitions)  # QIBA: SeriesTime rewritten by post-processing
    return series or (min(acquisitions) if acquisitions else None)


def suv_factor(
    datasets: Sequence[pydicom.Dataset], *, patient_weight: float | None = None, factor: float | None = None
) -> SuvInputs:
    """The factor from rescaled pixel values of a PET series to SUVbw, with every input.

    Parameters
    ----------
    datasets
        The series' slices (headers; the first is read for series-level values).
    patient_weight
        Weight in kg to use instead of PatientWeight (0010,1030).
    factor
        Use this factor as is (no header value is needed then).

    Raises
    ------
    DataError
        A value the conversion needs is missing or invalid (the error names the tag).
    """
    first = datasets[0]
    path = getattr(first, "filename", None)
    units = str(first.get("Units", "") or "").strip().upper()
    decay = str(first.get("DecayCorrection", "") or "").strip().upper()
    if factor is not None:
        return SuvInputs(units, decay, float(factor), "suv_factor given")
    unit_rule = UNITS_RULES.get(units)
    if unit_rule is None:
        raise DataError(
            f"PET Units (0054,1001) {units!r} is not one of {sorted(UNITS_RULES)}",
            path=path,
            hint="give suv_factor= to convert it yourself",
        )
    vendor = [(rule, v) for rule in VENDOR_FACTORS if (v := _vendor_value(first, rule)) is not None]
    if unit_rule.kind == "suv":
        return SuvInputs(units, decay, 1.0, "already SUV")
    if unit_rule.kind == "counts":
        usable = [(rule, v) for rule, v in vendor if units in rule.units]
        if not usable:
            raise DataError(
                "PET in counts (Units CNTS) without a vendor SUV factor (e.g. Philips (7053,1000))",
                path=path,
                hint="give suv_factor= (counts → SUV) or export the PET in Bq/ml",
            )
        rule, value = usable[0]
        return SuvInputs(units, decay, value, rule.name, vendor_factor=value)
    decay_rule = DECAY_RULES.get(decay)
    if decay_rule is None:
        raise DataError(
            f"PET DecayCorrection (0054,1102) {decay!r} is not one of {sorted(DECAY_RULES)}",
            path=path,
            hint="give suv_factor= to convert it yourself",
        )
    weight = patient_weight if patient_weight is not None else _number(first.get("PatientWeight"))
    if weight is None or weight <= 0:
        raise DataError(
            "PET: PatientWeight (0010,1030) missing or zero", path=path, hint="give patient_weight= (kg)"
        )
    items = first.get("RadiopharmaceuticalInformationSequence") or []
    if not items:
        raise DataError(
            "PET: no RadiopharmaceuticalInformationSequence (0054,0016): dose and half-life unknown",
            path=path,
            hint="give suv_factor=",
        )
    item = items[0]
    dose = _number(item.get("RadionuclideTotalDose"))
    if dose is None or dose <= 0:
        raise DataError(
            "PET: RadionuclideTotalDose (0018,1074) missing or zero", path=path, hint="give suv_factor="
        )
    half_life = _number(item.get("RadionuclideHalfLife"))
    if half_life is None or half_life <= 0:
        raise DataError(
            "PET: RadionuclideHalfLife (0018,1075) missing or zero", path=path, hint="give suv_factor="
        )
    warnings: list[str] = []
    decay_factor, seconds, injected, ref_text = 1.0, 0.0, None, None
    if decay_rule.decay_to != "none":
        reference = _reference(datasets, decay_rule.decay_to)
        if reference is None:
            raise DataError(
                "PET: no series or acquisition date/time (SeriesDate/SeriesTime, AcquisitionTime)",
                path=path,
                hint="give suv_factor=",
            )
        injection, notes = _injection(first, item, reference)
        warnings += notes
        seconds = (reference - injection).total_seconds()
        if seconds < 0:
            raise DataError(
                f"PET: the injection is {-seconds:.0f} s after the scan", path=path, hint="check the times"
            )
        decay_factor = 2.0 ** (-seconds / half_life)
        injected, ref_text = injection.isoformat(), reference.isoformat()
    value = weight * 1000.0 / (dose * decay_factor)
    for rule, vendor_value in vendor:
        if abs(vendor_value - value) > 0.02 * value:
            warnings.append(
                f"{rule.name} {vendor_value:.6g} differs from the computed factor {value:.6g}; computed used"
            )
    return SuvInputs(
        units=units,
        decay_correction=decay,
        factor=value,
        source="formula",
        weight_kg=weight,
        dose_bq=dose,
        half_life_s=half_life,
        injection=injected,
        reference=ref_text,
        decay_seconds=seconds,
        decay_factor=decay_factor,
        vendor_factor=vendor[0][1] if vendor else None,
        warnings=tuple(warnings),
    )
