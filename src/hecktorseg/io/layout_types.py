"""The record types of the dataset layouts (:class:`LayoutSpec`, :class:`FileScheme`,
:class:`SynthSpec`) and the single definitions of image suffixes, layout names and label sets.

The records themselves, one per layout, are the table :data:`~hecktorseg.io.layout_specs.LAYOUT_SPECS`
in :mod:`hecktorseg.io.layout_specs`.
"""

from __future__ import annotations

from typing import Literal

import attrs

from hecktorseg.io.case import Layout

__all__ = [
    "IMAGE_SUFFIXES",
    "LABELS_BINARY",
    "LABELS_GTVP_GTVN",
    "LAYOUT_NAMES",
    "FileScheme",
    "LayoutSpec",
    "NodeModel",
    "SynthSpec",
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
