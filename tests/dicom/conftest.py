"""Fixtures for the DICOM tests: tiny phantoms written as DICOM studies with vendor-like headers."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

from hecktorseg.data import Phantom, SyntheticConfig, make_phantom
from hecktorseg.dicom import StudyStyle, write_dicom_study


@pytest.fixture(scope="session")
def phantoms() -> dict[str, Phantom]:
    """Two tiny phantoms (48×48×24 CT): one with GTVp and nodes, one with GTVp only."""
    cfg = SyntheticConfig.tiny(tumour_radius_mm=(16.0, 20.0), node_radius_mm=(9.0, 11.0))
    return {
        "HN-A": make_phantom("HN-A", config=cfg, with_nodes=True, node_model="neck_levels", n_nodes=2),
        "HN-B": make_phantom("HN-B", config=cfg),
    }


@pytest.fixture(scope="session")
def flat_export(tmp_path_factory: pytest.TempPathFactory, phantoms: dict[str, Phantom]) -> Path:
    """Both phantoms in ONE flat folder of suffix-less files: START and ADMIN, distractors, clinic ROI names."""
    root = tmp_path_factory.mktemp("flat_export")
    a, b = phantoms["HN-A"], phantoms["HN-B"]
    write_dicom_study(
        root, "HN-A", a.ct, a.pet, a.label, style=StudyStyle(roi_names={1: "GTV-P", 2: "GTVn_L2"})
    )
    style_b = StudyStyle(decay_correction="ADMIN", start_datetime=False, manufacturer="Philips", philips_factor=True,
                         roi_names={1: "GTV_primary", 2: "GTV_N1"})  # fmt: skip
    write_dicom_study(root, "HN-B", b.ct, b.pet, b.label, style=style_b, seed=1)
    (root / "README.txt").write_text("not a DICOM file\n", encoding="utf-8")
    (root / "DICOMDIR_notes").write_bytes(b"\x00" * 300)
    return root


@pytest.fixture(scope="session")
def imported(tmp_path_factory: pytest.TempPathFactory, flat_export: Path) -> Path:
    """``flat_export`` imported into a HECKTOR 2025 dataset."""
    from hecktorseg.dicom import import_dicom

    out = tmp_path_factory.mktemp("imported")
    report = import_dicom(flat_export, out)
    assert report.ok, report.failed
    return out
