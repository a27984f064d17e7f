"""Every dataset layout hecktorseg reads, described once, as data.

Each layout (HECKTOR 2020, 2021, 2022, 2025, 2026 and nnU-Net raw) is one frozen
:class:`LayoutSpec` record in :data:`LAYOUT_SPECS`: its name, how to recognise it,
where a patient's images, label map and tables are (one :class:`FileScheme` per
arrangement the layout is distributed in), which label values it allows, and what
``hecktorseg synth`` writes for it (:class:`SynthSpec`). Detection, discovery,
label checks and the phantom writer all read these records; there is no
``if layout == …`` chain elsewhere.

This module also holds the single definitions of the image file suffixes
(:data:`IMAGE_SUFFIXES`), the layout names (:data:`LAYOUT_NAMES`, the values of
:class:`~hecktorseg.io.Layout`) and the label sets (:data:`LABELS_BINARY`,
:data:`LABELS_GTVP_GTVN`).

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

from typing import Literal

import attrs

from hecktorseg.errors import LayoutError
from hecktorseg.io.case import Layout

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

IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
"""File endings recognised for images (and label maps, predictions), in order of preference."""

LAYOUT_NAMES: tuple[str, ...] = tuple(item.value for item in Layout)
"""The layout names users type (``--layout``, ``--edition``)."""

LABELS_BINARY: frozenset[int] = frozenset({0, 1})
"""Label values of the 2020/2021 editions: background and primary tumour (GTVt)."""
LABELS_GTVP_GTVN: frozenset[int] = frozenset({0, 1, 2})
"""Label values of 2022, 2025 and 2026: background, primary tumour (GTVp), lymph nodes (GTVn)."""

NodeModel = Literal["none", "lateral", "neck_levels"]
"""How ``synth`` draws lymph nodes: none, the 2022 phantoms' lateral nodes, or neck levels II–IV."""


def split_image_suffix(name: str) -> tuple[str, str] | None:
    """``("CHUM-001__CT", ".nii.gz")`` for ``"CHUM-001__CT.nii.gz"``; ``None`` if not an image name."""
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def _template(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith("{pid}") or value.count("{pid}") != 1:
        raise ValueError(f"{attribute.name}: a file template starts with '{{pid}}', got {value!r}")


@attrs.frozen
class FileScheme:
    """One arrangement of a layout's files.

    Attributes
    ----------
    patient_folders
        Each patient's files sit in ``<images dir>/<PID>/`` (label map included);
        otherwise all files sit directly in the images / labels folders.
    images
        Folders (relative to the root; ``""`` is the root) holding the images; the
        first that exists is used (``imagesTr`` before ``imagesTs``).
    labels
        The label folders that go with ``images`` (same length; ignored with
        ``patient_folders``).
    ct, pet, label
        File names without suffix; ``{pid}`` stands for the patient id.
    channels_from_dataset_json
        nnU-Net: the CT and PET channel numbers come from ``dataset.json``
        (``ct``/``pet`` are the defaults ``{pid}_0000``/``{pid}_0001``).
    """

    patient_folders: bool
    images: tuple[str, ...]
    labels: tuple[str, ...]
    ct: str = attrs.field(validator=_template)
    pet: str = attrs.field(validator=_template)
    label: str = attrs.field(validator=_template)
    channels_from_dataset_json: bool = False

    def __attrs_post_init__(self) -> None:
        if len(self.images) != len(self.labels) or not self.images:
            raise ValueError("FileScheme: images and labels must be non-empty and of the same length")

    @staticmethod
    def tail(template: str) -> str:
        """The part of a template after ``{pid}`` (``"__CT"`` for ``"{pid}__CT"``)."""
        return template[len("{pid}") :]


@attrs.frozen
class SynthSpec:
    """What ``hecktorseg synth`` writes for a layout.

    Attributes
    ----------
    id_format
        Patient ids: ``str.format`` with ``centre`` and ``number`` (1-based).
    centres
        Centre codes the ids cycle through.
    nodes
        Lymph nodes drawn and labelled 2 (see :data:`NodeModel`).
    bbox_table
        Name of the box table written in the root, or ``None``.
    exact_boxes
        Boxes of exactly ``box_size_mm`` (2021) rather than jittered (2020).
    pet_on_ct_grid
        Resample PET onto the CT grid (nnU-Net wants one grid for all channels).
    dataset_json
        Write an nnU-Net ``dataset.json``.
    clinical_table
        Name of the clinical table written in the root, or ``None``.
    clinical_columns
        Its columns (``PatientID`` first), as the edition publishes them.
    no_primary_index
        0-based index of the patient without a GTVp (nodes only), when the dataset is
        large enough; ``None`` for none.
    no_nodes_index
        0-based index of a patient forced to have no lymph node; ``None`` for none.
    """

    id_format: str
    centres: tuple[str, ...]
    nodes: NodeModel = "none"
    bbox_table: str | None = None
    exact_boxes: bool = False
    pet_on_ct_grid: bool = False
    dataset_json: bool = False
    clinical_table: str | None = None
    clinical_columns: tuple[str, ...] = ()
    no_primary_index: int | None = None
    no_nodes_index: int | None = None


@attrs.frozen
class LayoutSpec:
    """One dataset layout, as data.

    Attributes
    ----------
    layout
        The :class:`~hecktorseg.io.Layout` (its value is the name users type).
    title
        Human-readable name.
    aliases
        Other accepted spellings (``hecktor2025``).
    schemes
        The file arrangements the layout comes in; the first is the canonical one
        (used by :func:`~hecktorseg.io.layout_paths` and ``synth``).
    labels
        Allowed label values, or ``None`` (taken from ``dataset.json`` for nnU-Net).
    label_names
        Names of label values 0, 1, … (``background``, ``GTVp``, ``GTVn``).
    bbox_tables
        Glob patterns of box tables (root first, then its parent).
    clinical_tables
        Names of clinical tables (root first, then its parent); their columns are
        joined per patient into :attr:`hecktorseg.io.Case.clinical`.
    markers
        Files whose presence (root or parent) identifies the layout.
    needs_marker
        Detect the layout only when a marker is present.
    synth
        What ``synth`` writes.
    """

    layout: Layout
    title: str
    schemes: tuple[FileScheme, ...]
    labels: frozenset[int] | None
    label_names: tuple[str, ...]
    synth: SynthSpec
    aliases: tuple[str, ...] = ()
    bbox_tables: tuple[str, ...] = ()
    clinical_tables: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    needs_marker: bool = False

    @property
    def name(self) -> str:
        """The layout name (``"2025"``)."""
        return self.layout.value

    @property
    def has_nodes(self) -> bool:
        """Whether the layout's label maps hold lymph nodes (label 2)."""
        return self.labels is not None and 2 in self.labels


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
        synth=SynthSpec(
            id_format="{centre}-{number:03d}",
            centres=_CENTRES_2022,
            nodes="neck_levels",
            clinical_table=_TABLE_2025,
            clinical_columns=_COLUMNS_2025,
            no_primary_index=2,
            no_nodes_index=1,
        ),
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
        synth=SynthSpec(
            id_format="{centre}-{number:03d}",
            centres=_CENTRES_2022,
            nodes="neck_levels",
            clinical_table=_TABLE_2026,
            clinical_columns=_COLUMNS_2026,
            no_primary_index=2,
            no_nodes_index=1,
        ),
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
"""Every layout, in detection order (see the module docstring)."""

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
