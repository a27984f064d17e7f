"""Reading and writing images, dataset layouts, box tables and clinical tables.

Every dataset layout is described once, as data, in :data:`LAYOUT_SPECS`
(:mod:`hecktorseg.io.layout_specs`); clinical tables become :attr:`Case.clinical`
and the centre of a case follows :func:`centre_of` (:mod:`hecktorseg.io.clinical`).

The bottom layer of hecktorseg: it imports nothing else from the package but
:mod:`hecktorseg.errors` and :mod:`hecktorseg.typing`.
"""

from hecktorseg.io._reading import (
    check_image_file,
    read_image,
    read_images,
)
from hecktorseg.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from hecktorseg.io.bbox import BBox
from hecktorseg.io.case import Case, Layout
from hecktorseg.io.clinical import (
    CENTRE_COLUMN,
    ClinicalInfo,
    ClinicalValue,
    centre_of,
    merge_clinical_tables,
    read_clinical_table,
)
from hecktorseg.io.files import (
    ensure_output_dir,
)
from hecktorseg.io.geometry import Geometry
from hecktorseg.io.image import (
    ImageKind,
    array_to_image,
    image_to_array,
    write_image,
)
from hecktorseg.io.layout_detect import image_files
from hecktorseg.io.layout_specs import (
    LABELS_GTVP_GTVN,
    LAYOUT_NAMES,
    LAYOUT_SPECS,
    FileScheme,
    LayoutSpec,
    SynthSpec,
    layout_spec,
)
from hecktorseg.io.layouts import (
    IMAGE_SUFFIXES,
    LABELS_2022,
    LABELS_BINARY,
    allowed_labels,
    centre_from_id,
    detect_layout,
    discover_cases,
    find_clinical_tables,
    layout_paths,
    parse_layout,
    validate_case,
)
from hecktorseg.io.tables import BBOX_COLUMNS, read_bbox_table, write_bbox_table

__all__ = [
    "BBOX_COLUMNS",
    "CENTRE_COLUMN",
    "IMAGE_SUFFIXES",
    "LABELS_2022",
    "LABELS_BINARY",
    "LABELS_GTVP_GTVN",
    "LAYOUT_NAMES",
    "LAYOUT_SPECS",
    "BBox",
    "Case",
    "ClinicalInfo",
    "ClinicalValue",
    "FileScheme",
    "Geometry",
    "ImageKind",
    "Layout",
    "LayoutSpec",
    "SynthSpec",
    "allowed_labels",
    "array_to_image",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "centre_from_id",
    "centre_of",
    "check_image_file",
    "detect_layout",
    "discover_cases",
    "ensure_output_dir",
    "find_clinical_tables",
    "image_files",
    "image_to_array",
    "layout_paths",
    "layout_spec",
    "merge_clinical_tables",
    "parse_layout",
    "read_bbox_table",
    "read_clinical_table",
    "read_image",
    "read_images",
    "validate_case",
    "write_bbox_table",
    "write_image",
]
