"""Reading and writing images, dataset layouts and box tables.

The bottom layer of hecktorseg: it imports nothing else from the package but
:mod:`hecktorseg.errors` and :mod:`hecktorseg.typing`.
"""

from hecktorseg.io._reading import (
    check_file_complete,
    check_image_file,
    read_image,
    read_images,
    set_io_threads,
)
from hecktorseg.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from hecktorseg.io.bbox import BBox
from hecktorseg.io.case import Case, Layout
from hecktorseg.io.files import (
    check_input_file,
    ensure_output_dir,
    is_stale_temp,
    output_file_error,
    output_lock,
)
from hecktorseg.io.geometry import IDENTITY_DIRECTION, Geometry
from hecktorseg.io.image import (
    ImageKind,
    array_to_image,
    image_to_array,
    read_image_itk,
    validate_image,
    write_image,
)
from hecktorseg.io.layouts import (
    IMAGE_SUFFIXES,
    LABELS_2022,
    LABELS_BINARY,
    allowed_labels,
    centre_from_id,
    detect_layout,
    discover_cases,
    find_bbox_tables,
    layout_paths,
    parse_layout,
    read_nnunet_dataset_json,
    validate_case,
)
from hecktorseg.io.tables import BBOX_COLUMNS, read_bbox_table, write_bbox_table

__all__ = [
    "BBOX_COLUMNS",
    "IDENTITY_DIRECTION",
    "IMAGE_SUFFIXES",
    "LABELS_2022",
    "LABELS_BINARY",
    "BBox",
    "Case",
    "Geometry",
    "ImageKind",
    "Layout",
    "allowed_labels",
    "array_to_image",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "centre_from_id",
    "check_file_complete",
    "check_image_file",
    "check_input_file",
    "detect_layout",
    "discover_cases",
    "ensure_output_dir",
    "find_bbox_tables",
    "image_to_array",
    "is_stale_temp",
    "layout_paths",
    "output_file_error",
    "output_lock",
    "parse_layout",
    "read_bbox_table",
    "read_image",
    "read_image_itk",
    "read_images",
    "read_nnunet_dataset_json",
    "set_io_threads",
    "validate_case",
    "validate_image",
    "write_bbox_table",
    "write_image",
]
