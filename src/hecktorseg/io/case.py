"""The :class:`Case` record: one patient's files in a dataset."""

from __future__ import annotations

import enum
from pathlib import Path

import attrs

from hecktorseg.io.bbox import BBox
from hecktorseg.io.clinical import ClinicalInfo, to_clinical

__all__ = ["Case", "Layout"]


class Layout(str, enum.Enum):
    """Dataset folder layouts hecktorseg reads.

    The value is what users type on the command line (``--layout 2021``).
    """

    HECKTOR2020 = "2020"
    """``<root>/<PID>/<PID>_ct.nii.gz``, ``<PID>_pt.nii.gz``, ``<PID>_ct_gtvt.nii.gz`` + ``bbox.csv``."""
    HECKTOR2021 = "2021"
    """Flat ``<root>/<PID>_ct|_pt|_gtvt.nii.gz`` + ``hecktor2021_bbox_*.csv``."""
    HECKTOR2022 = "2022"
    """``imagesTr/<PID>__CT|__PT.nii.gz``, ``labelsTr/<PID>.nii.gz`` (labels 0, 1 GTVp, 2 GTVn)."""
    HECKTOR2025 = "2025"
    """HECKTOR 2025 Task 1 — ``<PID>/<PID>__CT|__PT.nii.gz`` + ``<PID>/<PID>.nii.gz`` (0/1/2) and
    ``HECKTOR_2025_Training_Task_1.csv``; or the 2022 folders with the 2025 table names."""
    HECKTOR2026 = "2026"
    """HECKTOR 2026 — the 2025 Task 1 folders with ``HECKTOR_2026_Training_Task.csv``."""
    NNUNET = "nnunet"
    """nnU-Net raw data — ``imagesTr/<case>_0000|_0001.nii.gz``, ``labelsTr``, ``dataset.json``."""

    def __str__(self) -> str:
        return self.value


def _optional_path(value: object) -> Path | None:
    return None if value is None else Path(str(value))


@attrs.frozen
class Case:
    """One patient of a dataset: where its images are, and its box if a table gave one.

    Attributes
    ----------
    patient_id
        Identifier as used in file names (``CHGJ007``, ``CHUM-001``).
    centre
        Acquisition centre by :func:`hecktorseg.io.centre_of`: the clinical table's
        ``CenterID`` if it has one, else the identifier's prefix (``CHGJ``, ``CHUM``).
    ct_path, pet_path
        The CT (HU) and PET (SUV) images.
    label_path
        Ground-truth label map on the CT grid, if the dataset has one.
    bbox
        The head-and-neck box (world mm) from a box table, if any.
    layout
        The layout the case was found in.
    clinical
        The case's row of the dataset's clinical table(s) (HECKTOR 2025/2026):
        column → number, text or ``None`` (missing); empty when there is no table.
    """

    patient_id: str
    centre: str
    ct_path: Path = attrs.field(converter=Path)
    pet_path: Path = attrs.field(converter=Path)
    label_path: Path | None = attrs.field(default=None, converter=_optional_path)
    bbox: BBox | None = None
    layout: Layout | None = None
    clinical: ClinicalInfo = attrs.field(factory=ClinicalInfo, converter=to_clinical)

    @property
    def has_label(self) -> bool:
        """Whether a ground-truth label map is known."""
        return self.label_path is not None
