"""One patient from DICOM: the chosen series read into CT (HU), PET (SUVbw) and labels, with a record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import pydicom
import SimpleITK as sitk

from hecktorseg.dicom.index import SeriesEntry
from hecktorseg.dicom.rtstruct_read import rtstruct_to_labels
from hecktorseg.dicom.rules import DEFAULT_ROI_RULES, RoiRule
from hecktorseg.dicom.select import SeriesChoice, select_series
from hecktorseg.dicom.suv import suv_factor
from hecktorseg.dicom.volume import load_series
from hecktorseg.errors import DataError
from hecktorseg.io import Geometry, array_to_image

__all__ = ["ImportOptions", "PatientImport", "import_patient"]


@attrs.frozen
class ImportOptions:
    """Settings of a DICOM import.

    Attributes
    ----------
    ct_series, pet_series
        SeriesInstanceUIDs to use for the patient that has them (the rules choose otherwise).
    patient_weight
        Weight in kg when PatientWeight is missing (or to override it).
    suv_factor
        Factor from rescaled PET values to SUV, used as is (no header value needed).
    gtvp_roi, gtvn_roi
        Regular expressions for the ROI names of GTVp / GTVn (``None``: the defaults).
    selection
        Per patient id, ``{"ct_series": UID, "pet_series": UID}`` (a selection table).
    """

    ct_series: str | None = None
    pet_series: str | None = None
    patient_weight: float | None = None
    suv_factor: float | None = None
    gtvp_roi: str | None = None
    gtvn_roi: str | None = None
    selection: dict[str, dict[str, str]] = attrs.field(factory=dict)

    def rules(self) -> tuple[RoiRule, ...]:
        """The ROI name rules these options give."""
        from hecktorseg.dicom.rules import roi_rules

        if self.gtvp_roi is None and self.gtvn_roi is None:
            return DEFAULT_ROI_RULES
        return roi_rules(self.gtvp_roi, self.gtvn_roi)

    def uids_for(self, series: Sequence[SeriesEntry], pid: str) -> tuple[str | None, str | None]:
        """The CT and PET UIDs asked for this patient (by table, or by a UID it holds)."""
        row = self.selection.get(pid, {})
        held = {s.uid for s in series}
        ct = row.get("ct_series") or (self.ct_series if self.ct_series in held else None)
        pet = row.get("pet_series") or (self.pet_series if self.pet_series in held else None)
        return ct, pet


@attrs.frozen
class PatientImport:
    """One imported patient.

    Attributes
    ----------
    ct, pet
        CT in HU and PET in SUVbw (float32 images on their own grids).
    label
        uint8 label map on the CT grid, or ``None`` without an RTSTRUCT.
    ct_datasets
        The CT slices' headers in the image's slice order.
    record
        What was chosen and computed (JSON-ready).
    """

    ct: sitk.Image
    pet: sitk.Image
    label: sitk.Image | None
    ct_datasets: tuple[pydicom.Dataset, ...]
    record: dict[str, Any]


def _describe(series: SeriesEntry) -> dict[str, Any]:
    return {"uid": series.uid, "description": series.description, "files": len(series.files)}


def import_patient(
    pid: str, series: Sequence[SeriesEntry], options: ImportOptions | None = None
) -> PatientImport:
    """Read one patient's CT, PET (as SUVbw) and RTSTRUCT labels.

    Raises
    ------
    DataError, GeometryError
        Series choice, geometry, SUV or RTSTRUCT problems (one line, naming the tag or file).
    """
    opts = options or ImportOptions()
    ct_uid, pet_uid = opts.uids_for(series, pid)
    choice: SeriesChoice = select_series(pid, series, ct_series=ct_uid, pet_series=pet_uid)
    assert choice.pet is not None  # need_pet=True
    ct = load_series(choice.ct, f"patient {pid}: CT series {choice.ct.uid}")
    pet = load_series(choice.pet, f"patient {pid}: PET series {choice.pet.uid}")
    suv = suv_factor(pet.datasets, patient_weight=opts.patient_weight, factor=opts.suv_factor)
    pet_image = sitk.Cast(pet.image * suv.factor, sitk.sitkFloat32)
    warnings = [*ct.warnings, *pet.warnings, *suv.warnings]
    record: dict[str, Any] = {
        "patient_id": pid,
        "ct_series": _describe(choice.ct),
        "pet_series": _describe(choice.pet),
        "skipped_series": dict(choice.skipped),
        "suv": attrs.asdict(suv),
    }
    label_image = None
    if choice.rtstruct is not None:
        if ct.resampled:
            raise DataError(
                f"patient {pid}: the CT was resampled (uneven spacing), so its RTSTRUCT cannot be placed on it",
                hint="re-export the CT with even spacing",
            )
        rt = pydicom.dcmread(choice.rtstruct.first.path)
        geometry = Geometry.from_image(ct.image)
        labels, mapping = rtstruct_to_labels(rt, geometry, opts.rules())
        label_image = array_to_image(labels, geometry)
        warnings += mapping.warnings
        record["rtstruct"] = {
            "file": str(choice.rtstruct.first.path),
            "roi_labels": mapping.labels,
            "unmatched_rois": list(mapping.unmatched),
            "voxels": {str(v): int(np.count_nonzero(labels == v)) for v in (1, 2)},
        }
    record["warnings"] = warnings
    return PatientImport(_as_int16_if_exact(ct.image), pet_image, label_image, ct.datasets, record)


def _as_int16_if_exact(image: sitk.Image) -> sitk.Image:
    """The CT as int16 when every value is an integer in range (the usual HU), else as it is.

    Half the size of float32 and far better gzip compression: the NIfTI write is a large part
    of an import (see ``benchmarks/bench_dicom.py``).
    """
    values = sitk.GetArrayViewFromImage(image)
    if (
        values.size == 0
        or values.min() < -32768
        or values.max() > 32767
        or not np.array_equal(values, np.round(values))
    ):
        return image
    return sitk.Cast(image, sitk.sitkInt16)
