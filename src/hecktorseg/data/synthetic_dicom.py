"""Synthetic phantoms written as a DICOM PET/CT export (``hecktorseg synth --format dicom``).

Each patient is a 2025/2026-style phantom (GTVp and nodes at neck levels II–IV) written by
:func:`hecktorseg.dicom.write_dicom_study`: CT, PET in Bq/ml with per-slice slopes and the
injection before midnight, an RTSTRUCT with clinical ROI spellings, a localizer and a PET
without attenuation correction — all in one flat folder of files without suffixes, as a PACS
export looks. ``hecktorseg dicom import`` reads it back.
"""

from __future__ import annotations

from pathlib import Path

from hecktorseg.data.synthetic import SyntheticConfig, make_phantom, synthetic_patient_ids
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.io import ensure_output_dir
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["ROI_SPELLINGS", "write_synthetic_dicom"]

ROI_SPELLINGS: tuple[dict[int, str], ...] = (
    {1: "GTVp", 2: "GTVn"},
    {1: "GTV-P", 2: "GTV_N1"},
    {1: "GTV_primary", 2: "GTVn_L2"},
    {1: "GTVt", 2: "GTV-LN"},
)
"""ROI names used in turn by the phantoms' RTSTRUCTs (spellings seen in clinics)."""


def write_synthetic_dicom(
    out_dir: PathLike,
    *,
    n_cases: int = 2,
    seed: int = 0,
    config: SyntheticConfig | None = None,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> list[str]:
    """Write ``n_cases`` phantoms as one flat DICOM export (see the module docs).

    Parameters
    ----------
    out_dir
        Destination folder (created); it must be empty unless ``force``.
    n_cases
        Number of patients.
    seed
        Dataset seed.
    config
        Phantom configuration (default :class:`SyntheticConfig`).
    progress
        ``progress(done, total, patient_id)`` after each patient.
    force
        Allow a non-empty folder.

    Returns
    -------
    list of str
        The patient ids written.
    """
    from hecktorseg.dicom import StudyStyle, write_dicom_study

    if n_cases < 1:
        raise ConfigError(f"n_cases must be at least 1, got {n_cases}")
    root = ensure_output_dir(out_dir)
    if any(root.iterdir()) and not force:
        raise DataError(
            "output folder is not empty", path=root, hint="choose an empty folder or pass force=True"
        )
    cfg = SyntheticConfig() if config is None else config
    ids = synthetic_patient_ids(n_cases, "2025")
    for i, pid in enumerate(ids):
        phantom = make_phantom(pid, seed=seed, config=cfg, with_nodes=True, node_model="neck_levels")
        style = StudyStyle(
            decay_correction="START" if i % 2 == 0 else "ADMIN",
            roi_names=ROI_SPELLINGS[i % len(ROI_SPELLINGS)],
            manufacturer=("SIEMENS", "Philips", "GE MEDICAL SYSTEMS")[i % 3],
            philips_factor=i % 3 == 1,
        )
        write_dicom_study(Path(root), pid, phantom.ct, phantom.pet, phantom.label, style=style, seed=seed + i)
        if progress is not None:
            progress(i + 1, len(ids), pid)
    return ids
