"""Synthetic head-and-neck PET/CT phantoms: the dataset that ships with hecktorseg.

Real HECKTOR images cannot be redistributed, so hecktorseg generates phantoms
that exercise everything real data does:

* a CT on its own grid, in Hounsfield units: air (−1000) around an elliptic
  head-and-neck body with a thin fat layer, soft tissue (≈40 HU), an airway,
  bone (≥ 700 HU: skull, mandible, cervical spine) and a brain;
* a PET on a coarser grid with a *different origin and extent*, in SUV: 0 in
  air, ≈1 in the body, a high-uptake brain (SUV 8–12), mildly active salivary
  glands and the primary tumour (SUV 5–20), blurred to PET resolution
  (Gaussian, 6 mm FWHM by default) with activity-dependent noise;
* the primary tumour (GTVt, label 1) as an irregular blob (a union of
  ellipsoids with a wavy surface) in the oropharynx, below the brain and in
  front of the spine; it is bright on PET and slightly denser on CT
  (+20 HU by default). Its mask lives on the CT grid;
* optionally lymph nodes (GTVn, label 2): in the 2022 layout lateral to the tumour; in the
  2025/2026 layouts 0–4 FDG-avid nodes at neck levels II–IV, lateral to and below the primary
  (:data:`NODE_LEVELS`, :data:`NODE_COUNT_PROBABILITIES`), with taller grids where a node lies
  low, one patient without nodes and one without a primary tumour;
* a head-and-neck box of about 144 mm (like the challenge's ``bbox.csv``);
* for 2025/2026, a clinical table with the edition's columns (:func:`clinical_row`), some
  values missing.

What is written for each edition (ids, centres, nodes, tables) comes from the layout records
(:attr:`hecktorseg.io.LayoutSpec.synth`).

All shapes are defined in world millimetres and evaluated at the voxel centres
of each grid (:meth:`hecktorseg.io.Geometry.index_to_world`), so CT, PET and
mask agree physically whatever the grids. A phantom depends only on
``(patient_id, seed, config)``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from hecktorseg.data._synth_config import NODE_COUNT_PROBABILITIES, NODE_LEVELS
from hecktorseg.data._synth_config import Phantom as Phantom  # documented with hecktorseg.data
from hecktorseg.data._synth_config import SyntheticConfig as SyntheticConfig
from hecktorseg.data._synth_render import _rng
from hecktorseg.data._synth_render import make_phantom as make_phantom
from hecktorseg.errors import ConfigError, DataError, LayoutError
from hecktorseg.io import (
    LAYOUT_SPECS,
    BBox,
    Case,
    ClinicalInfo,
    ClinicalValue,
    Layout,
    LayoutSpec,
    atomic_write_bytes,
    atomic_write_text,
    centre_of,
    ensure_output_dir,
    layout_paths,
    layout_spec,
    parse_layout,
    write_bbox_table,
    write_image,
)
from hecktorseg.io.layout_specs import NodeModel
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = [
    "NODE_COUNT_PROBABILITIES",
    "NODE_LEVELS",
    "clinical_row",
    "synthetic_patient_ids",
    "write_synthetic_dataset",
]

logger = logging.getLogger(__name__)

CENTRES_2020: tuple[str, ...] = layout_spec(Layout.HECKTOR2020).synth.centres
"""Training centres of HECKTOR 2020, cycled through by the patient ids (from the layout record)."""
CENTRES_2021: tuple[str, ...] = layout_spec(Layout.HECKTOR2021).synth.centres
"""Training centres of HECKTOR 2021 (2020's plus CHUP; from the layout record)."""
CENTRES_2022: tuple[str, ...] = layout_spec(Layout.HECKTOR2022).synth.centres
"""Centres of HECKTOR 2022 (ids such as ``CHUM-001``; from the layout record)."""


def synthetic_patient_ids(n_cases: int, edition: Layout | str = "2020") -> list[str]:
    """Patient ids of a synthetic dataset: real-looking, cycling through the edition's centres.

    ``CHGJ001, CHMR002, CHUM003, …`` (2020/nnU-Net), with CHUP in 2021, and
    ``CHUM-001, CHUP-002, …`` for 2022, 2025 and 2026 (the layout record's
    :attr:`~hecktorseg.io.SynthSpec.id_format`).
    """
    synth = layout_spec(edition).synth
    return [
        synth.id_format.format(centre=synth.centres[i % len(synth.centres)], number=i + 1)
        for i in range(n_cases)
    ]


def _yes_no(rng: np.random.Generator, p_yes: float, p_missing: float) -> str | None:
    missing, yes = rng.random() < p_missing, rng.random() < p_yes
    return None if missing else ("Yes" if yes else "No")


def clinical_row(
    phantom: Phantom, spec: LayoutSpec, *, seed: int = 0, n_nodes: int | None = None
) -> dict[str, ClinicalValue]:
    """Plausible clinical values of one phantom for its edition's table (``None``: missing).

    The values come from their own random stream (``patient_id``, ``seed``), so they
    never change the images. ``CenterID`` is the 1-based position of the id's centre
    in the edition's centre list and is never missing; ``T-stage`` follows the
    tumour's size (``T0`` without a primary), ``N-stage`` the number of nodes
    (``N0`` without). Tobacco, alcohol, performance and HPV status are missing for
    some patients, as in the real tables.
    """
    rng = _rng(f"{phantom.patient_id}#clinical", seed)
    synth = spec.synth
    centre = next((c for c in synth.centres if phantom.patient_id.startswith(c)), synth.centres[0])
    nodes = len(phantom.node_centers_mm) if n_nodes is None else n_nodes
    hpv = None if rng.random() < 0.3 else float(rng.random() < 0.6)
    radius = phantom.tumour_radius_mm
    t_stage = "T0" if not phantom.has_primary else ("T1" if radius < 11 else "T2" if radius < 13.5 else "T3")
    n_stage = ("N0", "N1", "N2", "N2", "N3")[min(nodes, 4)]
    relapse = float(rng.random() < 0.3)
    values: dict[str, ClinicalValue] = {
        "CenterID": float(synth.centres.index(centre) + 1),
        "Gender": "M" if rng.random() < 0.8 else "F",
        "Age": float(rng.integers(38, 85)),
        "Tobacco Consumption": _yes_no(rng, 0.6, 0.2),
        "Alcohol Consumption": _yes_no(rng, 0.5, 0.25),
        "Performance Status": None if rng.random() < 0.3 else float(rng.integers(0, 3)),
        "Treatment": str(rng.choice(["Radiotherapy", "Chemoradiotherapy", "Surgery + Radiotherapy"])),
        "HPV Status": hpv,
        "Relapse": relapse,
        "RFS": float(rng.integers(60, 900) if relapse else rng.integers(700, 2600)),
        "T-stage": t_stage,
        "N-stage": n_stage,
    }
    return {name: values.get(name) for name in synth.clinical_columns if name != "PatientID"}


def _cell(value: ClinicalValue) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _write_clinical_table(path: Path, columns: Sequence[str], rows: dict[str, ClinicalInfo]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for pid in sorted(rows):
        writer.writerow([pid if name == "PatientID" else _cell(rows[pid].get(name)) for name in columns])
    atomic_write_text(path, out.getvalue())


def _write(image: sitk.Image, path: Path, *, compress: bool) -> None:
    """Write a NIfTI file atomically; ``.nii.gz`` with fast gzip (level 1) instead of ITK's slow default."""
    if not compress:
        write_image(image, path, compress=False)
        return
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".synth-") as tmp_dir:
        plain = Path(tmp_dir) / "image.nii"
        write_image(image, plain, compress=False)
        data = gzip.compress(plain.read_bytes(), compresslevel=1, mtime=0)
    atomic_write_bytes(path, data)


def _parse_layout(edition: Layout | str) -> Layout:
    try:
        return parse_layout(edition)
    except LayoutError as exc:
        raise ConfigError(f"unknown dataset edition {edition!r}", hint=exc.hint) from None


def _remove_other_synth_tables(root: Path, spec: LayoutSpec) -> None:
    """Remove the tables another edition's synthetic dataset keeps in ``root`` (``force=True``).

    They would make the folder look like that edition (layout detection reads its tables)
    and give its cases stale clinical values.
    """
    own = {
        spec.synth.bbox_table,
        spec.synth.clinical_table,
        "dataset.json" if spec.synth.dataset_json else None,
    }
    for other in LAYOUT_SPECS:
        synth = other.synth
        for name in (synth.bbox_table, synth.clinical_table, "dataset.json" if synth.dataset_json else None):
            path = root / name if name is not None and name not in own else None
            if path is not None and path.is_file():
                path.unlink()
                logger.info("removed %s (a table of a %s synthetic dataset)", path, other.name)


def write_synthetic_dataset(
    out_dir: PathLike,
    *,
    n_cases: int = 8,
    edition: Layout | str = "2020",
    seed: int = 0,
    config: SyntheticConfig | None = None,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> list[Case]:
    """Write a synthetic dataset in one of the HECKTOR layouts.

    What is written for each edition comes from its layout record
    (:attr:`hecktorseg.io.LayoutSpec.synth`).

    Parameters
    ----------
    out_dir
        Destination folder (created). It must be empty unless ``force``.
    n_cases
        Number of patients.
    edition
        ``"2020"`` (nested folders + ``bbox.csv``), ``"2021"`` (flat +
        ``hecktor2021_bbox_training.csv`` with exact 144 mm boxes), ``"2022"``
        (``imagesTr``/``labelsTr``, labels {0, 1, 2} with lymph nodes, no box
        table), ``"2025"`` (``<PID>/<PID>__CT|__PT|.nii.gz`` with 0–4 lymph nodes at
        neck levels II–IV, ``HECKTOR_2025_Training_Task_1.csv``), ``"2026"`` (the same
        folders, ``HECKTOR_2026_Training_Task.csv``) or ``"nnunet"`` (nnU-Net raw:
        PET resampled onto the CT grid, ``dataset.json``). In 2025/2026 the second
        patient has no lymph node and the third no primary tumour (nodes only).
    seed
        Dataset seed: the same seed gives the same files.
    config
        Phantom configuration (default :class:`SyntheticConfig`).
    progress
        Called as ``progress(done, total, patient_id)`` after each case.
    force
        Allow writing into a non-empty folder (existing files of the same name are replaced).

    Returns
    -------
    list of Case
        The cases written, as :func:`hecktorseg.io.discover_cases` finds them.
    """
    layout = _parse_layout(edition)
    spec = layout_spec(layout)
    synth = spec.synth
    cfg = SyntheticConfig() if config is None else config
    if n_cases < 1:
        raise ConfigError(f"n_cases must be at least 1, got {n_cases}")
    root = ensure_output_dir(out_dir)
    if any(root.iterdir()) and not force:
        raise DataError(
            "output folder is not empty",
            path=root,
            hint="choose an empty folder or pass force=True to write into it",
        )
    if force:
        _remove_other_synth_tables(root, spec)
    suffix = ".nii.gz" if cfg.compress else ".nii"
    cases: list[Case] = []
    boxes: dict[str, BBox] = {}
    clinical: dict[str, ClinicalInfo] = {}
    ids = synthetic_patient_ids(n_cases, layout)
    for i, pid in enumerate(ids):
        model: NodeModel = "lateral" if synth.nodes == "none" else synth.nodes
        phantom = make_phantom(
            pid,
            seed=seed,
            config=cfg,
            with_nodes=synth.nodes != "none",
            node_model=model,
            n_nodes=0 if i == synth.no_nodes_index else None,
            with_primary=i != synth.no_primary_index,
        )
        ct_path, pet_path, label_path = layout_paths(root, pid, layout, suffix=suffix)
        pet = phantom.pet
        if synth.pet_on_ct_grid:  # nnU-Net wants every channel on one grid
            pet = sitk.Resample(pet, phantom.ct, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        for image, path in ((phantom.ct, ct_path), (pet, pet_path), (phantom.label, label_path)):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(image, path, compress=cfg.compress)
        bbox: BBox | None = None
        if synth.bbox_table is not None:
            exact = BBox.from_center(phantom.bbox.center.tolist(), (cfg.box_size_mm,) * 3)
            bbox = exact if synth.exact_boxes else phantom.bbox
            boxes[pid] = bbox
        info = ClinicalInfo()
        if synth.clinical_table is not None:
            info = ClinicalInfo(clinical_row(phantom, spec, seed=seed))
            clinical[pid] = info
        cases.append(
            Case(
                patient_id=pid,
                centre=centre_of(pid, info),
                ct_path=ct_path,
                pet_path=pet_path,
                label_path=label_path,
                bbox=bbox,
                layout=layout,
                clinical=info,
            )
        )
        logger.debug("wrote synthetic case %s", pid)
        if progress is not None:
            progress(i + 1, n_cases, pid)
    if synth.bbox_table is not None:
        write_bbox_table(root / synth.bbox_table, boxes)
    if synth.clinical_table is not None:
        _write_clinical_table(root / synth.clinical_table, synth.clinical_columns, clinical)
    if synth.dataset_json:
        dataset = {
            "name": "HecktorsegSynthetic",
            "description": f"hecktorseg synthetic PET/CT phantoms (seed {seed})",
            "channel_names": {"0": "CT", "1": "PT"},
            "labels": {name: value for value, name in enumerate(spec.label_names)},
            "numTraining": n_cases,
            "file_ending": suffix,
        }
        atomic_write_text(root / "dataset.json", json.dumps(dataset, indent=2) + "\n")
    return sorted(cases, key=lambda c: c.patient_id)
