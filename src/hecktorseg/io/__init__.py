"""Reading and writing images, dataset layouts and box tables.

The bottom layer of hecktorseg: it imports nothing else from the package but
:mod:`hecktorseg.errors` and :mod:`hecktorseg.typing`.
"""

from hecktorseg.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from hecktorseg.io.bbox import BBox
from hecktorseg.io.case import Case, Layout
from hecktorseg.io.geometry import IDENTITY_DIRECTION, Geometry
from hecktorseg.io.image import (
    ImageKind,
    array_to_image,
    image_to_array,
    read_image,
    validate_image,
    write_image,
)

__all__ = [
    "IDENTITY_DIRECTION",
    "BBox",
    "Case",
    "Geometry",
    "ImageKind",
    "Layout",
    "array_to_image",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "image_to_array",
    "read_image",
    "validate_image",
    "write_image",
]
