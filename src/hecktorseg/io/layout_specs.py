"""Every dataset layout hecktorseg reads, described once, as data.

Each layout (HECKTOR 2020, 2021, 2022, 2025, 2026 and nnU-Net raw) is one frozen
:class:`LayoutSpec` record in :data:`LAYOUT_SPECS`: its name, how to recognise it,
where a patient's images, label map and tables are (one :class:`FileScheme` per
arrangement the layout is distributed in), which label values it allows, and what
``hecktorseg synth`` writes for it (:class:`SynthSpec`). Detection, discovery,
label checks and the phantom writer all read these records; there is no
``if layout == …`` chain elsewhere.

The record types and the single definitions of the image file suffixes
(:data:`IMAGE_SUFFIXES`), the layout names (:data:`LAYOUT_NAMES`, the values of
:class:`~hecktorseg.io.Layout`) and the label sets (:data:`LABELS_BINARY`,
:data:`LABELS_GTVP_GTVN`) live in :mod:`hecktorseg.io.layout_types` and are re-exported here.

=========  ====================================================================================
Layout     Files (any image suffix of :data:`IMAGE_SUFFIXES`)
=========  ====================================================================================
2020       ``<root>/<PID>/<PID>_ct.nii.gz``, ``<PID>_pt.nii.gz``, ``<PID>_ct_gtvt.nii.gz`` (0/1);
           box table ``bbox.csv`` (in the root or its parent)
2021       ``<root>/<PID>_ct.nii.gz``, ``<PID>_pt.nii.gz``, ``<PID>_gtvt.nii.gz`` (0/1);
           box tables ``hecktor2021_bbox_*.csv``
2022       ``<root>/imagesTr/<PID>__CT.nii.gz``, ``<PID>__PT.nii.gz``,
           ``<root>/labelsTr/<PID>.nii.gz`` (0 background, 1 GTVp, 2 GTVn); test:
           ``imagesTs``/``labelsTs``; no table
2025       Task 1: ``<root>/<PID>/<PID>__CT.nii.gz``, ``<PID>__PT.nii.gz``, ``<PID>.nii.gz``
           (0/1/2) and ``<root>/HECKTOR_2025_Training_Task_1.csv``; or the 2022 folders with
           ``hecktor2025_clinical_info_training.csv`` and ``hecktor2025_endpoint_training.csv``
2026       the 2025 Task 1 folders with ``<root>/HECKTOR_2026_Training_Task.csv``
nnunet     ``<root>/imagesTr/<case>_0000.nii.gz`` (CT), ``_0001`` (PET), ``labelsTr/<case>.nii.gz``
           and ``dataset.json`` (``channel_names``, ``labels``, ``file_ending``)
=========  ====================================================================================

Detection (:func:`hecktorseg.io.detect_layout`): the layouts whose files are present
are candidates; among them the first whose **marker** file (a table that only that
layout has, or ``dataset.json``) lies in the root or its parent wins; without a
marker, the first candidate that does not need one (so a 2025-style folder without a
table, e.g. a test set, reads as 2025 — force ``--layout 2026`` for a 2026 test set;
both read the same way).
"""

from __future__ import annotations

from hecktorseg.errors import LayoutError
from hecktorseg.io.case import Layout
from hecktorseg.io.layout_types import (
    IMAGE_SUFFIXES,
    LABELS_BINARY,
    LABELS_GTVP_GTVN,
    LAYOUT_NAMES,
    FileScheme,
    LayoutSpec,
    NodeModel,
    SynthSpec,
    split_image_suffix,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "LABELS_BINARY",
    "LABELS_GTVP_GTVN",
    "LAYOUT_NAMES",
    "LAYOUT_SPECS",
    "FileScheme",
    "LayoutSpec",
    "NodeModel",
    "SynthSpec",
    "layout_spec",
    "parse_layout",
    "split_image_suffix",
]

_CENTRES_2020 = ("CHGJ", "CHMR", "CHUM", "CHUS")
_CENTRES_2021 = ("CHGJ", "CHMR", "CHUM", "CHUS", "CHUP")
_CENTRES_2022 = ("CHUM", "CHUP", "CHUS", "CHUV", "HGJ", "HMR", "MDA", "USZ", "CHB")

_IMAGES_LABELS = FileScheme(
    patient_folders=False,
    images=("imagesTr", "imagesTs"),
    labels=("labelsTr", "labelsTs"),
    ct="{pid}__CT",
    pet="{pid}__PT",
    label="{pid}",
)
_PATIENT_FOLDERS_2025 = FileScheme(
    patient_folders=True, images=("",), labels=("",), ct="{pid}__CT", pet="{pid}__PT", label="{pid}"
)

_COLUMNS_2025 = (
    "PatientID",
    "CenterID",
    "Gender",
    "Age",
    "Tobacco Consumption",
    "Alcohol Consumption",
    "Performance Status",
    "Treatment",
    "HPV Status",
)
_COLUMNS_2026 = (
    "PatientID",
    "CenterID",
    "Age",
    "Gender",
    "Tobacco Consumption",
    "Alcohol Consumption",
    "HPV Status",
    "Relapse",
    "RFS",
    "T-stage",
    "N-stage",
)
_TABLE_2025 = "HECKTOR_2025_Training_Task_1.csv"
_TABLES_2025_IMAGESTR = ("hecktor2025_clinical_info_training.csv", "hecktor2025_endpoint_training.csv")
_TABLE_2026 = "HECKTOR_2026_Training_Task.csv"


def _neck_levels_synth(table: str, columns: tuple[str, ...]) -> SynthSpec:
    """What ``synth`` writes for 2025 and 2026: nodes at neck levels II–IV and a clinical table.

    The second patient has no lymph node and the third no primary tumour.
    """
    return SynthSpec(
        id_format="{centre}-{number:03d}",
        centres=_CENTRES_2022,
        nodes="neck_levels",
        clinical_table=table,
        clinical_columns=columns,
        no_primary_index=2,
        no_nodes_index=1,
    )


LAYOUT_SPECS: tuple[LayoutSpec, ...] = (
    LayoutSpec(
        layout=Layout.NNUNET,
        title="nnU-Net raw",
        aliases=("nnu-net",),
        schemes=(
            FileScheme(
                patient_folders=False,
                images=("imagesTr", "imagesTs"),
                labels=("labelsTr", "labelsTs"),
                ct="{pid}_0000",
                pet="{pid}_0001",
                label="{pid}",
                channels_from_dataset_json=True,
            ),
        ),
        labels=None,
        label_names=("background", "GTVp"),
        markers=("dataset.json",),
        needs_marker=True,
        synth=SynthSpec(
            id_format="{centre}{number:03d}", centres=_CENTRES_2020, pet_on_ct_grid=True, dataset_json=True
        ),
    ),
    LayoutSpec(
        layout=Layout.HECKTOR2022,
        title="HECKTOR 2022",
        aliases=("hecktor2022",),
        schemes=(_IMAGES_LABELS,),
        labels=LABELS_GTVP_GTVN,
        label_names=("background", "GTVp", "GTVn"),
        synth=SynthSpec(id_format="{centre}-{number:03d}", centres=_CENTRES_2022, nodes="lateral"),
    ),
    LayoutSpec(
        layout=Layout.HECKTOR2025,
        title="HECKTOR 2025 (Task 1)",
        aliases=("hecktor2025",),
        schemes=(_PATIENT_FOLDERS_2025, _IMAGES_LABELS),
        labels=LABELS_GTVP_GTVN,
        label_names=("background", "GTVp", "GTVn"),
        clinical_tables=(_TABLE_2025, *_TABLES_2025_IMAGESTR),
        markers=(_TABLE_2025, *_TABLES_2025_IMAGESTR),
        synth=_neck_levels_synth(_TABLE_2025, _COLUMNS_2025),
    ),
    LayoutSpec(
        layout=Layout.HECKTOR2026,
        title="HECKTOR 2026",
        aliases=("hecktor2026",),
        schemes=(_PATIENT_FOLDERS_2025,),
        labels=LABELS_GTVP_GTVN,
        label_names=("background", "GTVp", "GTVn"),
        clinical_tables=(_TABLE_2026,),
        markers=(_TABLE_2026,),
        needs_marker=True,
        synth=_neck_levels_synth(_TABLE_2026, _COLUMNS_2026),
    ),
    LayoutSpec(
        layout=Layout.HECKTOR2020,
        title="HECKTOR 2020",
        aliases=("hecktor2020",),
        schemes=(
            FileScheme(
                patient_folders=True,
                images=("",),
                labels=("",),
                ct="{pid}_ct",
                pet="{pid}_pt",
                label="{pid}_ct_gtvt",
            ),
        ),
        labels=LABELS_BINARY,
        label_names=("background", "GTVt"),
        bbox_tables=("bbox.csv",),
        synth=SynthSpec(id_format="{centre}{number:03d}", centres=_CENTRES_2020, bbox_table="bbox.csv"),
    ),
    LayoutSpec(
        layout=Layout.HECKTOR2021,
        title="HECKTOR 2021",
        aliases=("hecktor2021",),
        schemes=(
            FileScheme(
                patient_folders=False,
                images=("",),
                labels=("",),
                ct="{pid}_ct",
                pet="{pid}_pt",
                label="{pid}_gtvt",
            ),
        ),
        labels=LABELS_BINARY,
        label_names=("background", "GTVt"),
        bbox_tables=("hecktor2021_bbox_*.csv",),
        synth=SynthSpec(
            id_format="{centre}{number:03d}",
            centres=_CENTRES_2021,
            bbox_table="hecktor2021_bbox_training.csv",
            exact_boxes=True,
        ),
    ),
)
"""Every layout, in detection order (see :mod:`hecktorseg.io.layout_specs`)."""

_BY_LAYOUT = {spec.layout: spec for spec in LAYOUT_SPECS}
_BY_NAME = {name: spec.layout for spec in LAYOUT_SPECS for name in (spec.name, *spec.aliases)}
assert set(_BY_LAYOUT) == set(Layout), "every Layout needs a LayoutSpec"


def parse_layout(layout: Layout | str) -> Layout:
    """Turn a layout name (``"2020"`` … ``"2026"``, ``"nnunet"``, an alias) into a :class:`Layout`.

    Raises
    ------
    LayoutError
        The name is not a known layout.
    """
    if isinstance(layout, Layout):
        return layout
    text = str(layout).strip().lower()
    if text in _BY_NAME:
        return _BY_NAME[text]
    raise LayoutError(f"unknown dataset layout {layout!r}", hint="choose one of " + ", ".join(LAYOUT_NAMES))


def layout_spec(layout: Layout | str) -> LayoutSpec:
    """The :class:`LayoutSpec` record of a layout (name, alias or :class:`Layout`).

    Raises
    ------
    LayoutError
        The name is not a known layout.
    """
    return _BY_LAYOUT[parse_layout(layout)]
