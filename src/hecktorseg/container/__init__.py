"""Grand Challenge submission for HECKTOR 2025/2026 (Task 1, GTVp + GTVn).

- :func:`container_predict`: the inside of the image — one case from
  ``/input/images/{ct,pet}/*.mha`` to
  ``/output/images/tumor-lymph-node-segmentation/output.mha`` (labels 0/1/2 on the CT
  grid), identical to ``hecktorseg predict``, on the device :func:`image_runtime` chooses;
- :func:`build_context`: a ready Docker build context (a Dockerfile on a pinned base image,
  every dependency pinned by :func:`pinned_requirements` for a CPU or a GPU
  :data:`VARIANTS` entry, optionally every wheel vendored for an offline build, this
  hecktorseg, the checkpoints, the entry point, a script that runs the image on a sample
  case, a README).
"""

from hecktorseg.container.build import BUILD_FILES, BuildResult, build_context
from hecktorseg.container.dependencies import (
    DEPENDENCIES,
    TORCH_INDEX_URL,
    TORCH_VERSION,
    VARIANTS,
    ImageVariant,
    pinned_requirements,
    vendor_wheels,
)
from hecktorseg.container.predict import (
    CT_DIR,
    EHR_FILE,
    OUTPUT_RELPATH,
    PET_DIR,
    ContainerInput,
    ContainerResult,
    container_predict,
    find_container_input,
    image_runtime,
)
from hecktorseg.container.templates import BASE_IMAGE_DIGESTS, archive_name, default_base_image

__all__ = [
    "BASE_IMAGE_DIGESTS",
    "BUILD_FILES",
    "CT_DIR",
    "DEPENDENCIES",
    "EHR_FILE",
    "OUTPUT_RELPATH",
    "PET_DIR",
    "TORCH_INDEX_URL",
    "TORCH_VERSION",
    "VARIANTS",
    "BuildResult",
    "ContainerInput",
    "ContainerResult",
    "ImageVariant",
    "archive_name",
    "build_context",
    "container_predict",
    "default_base_image",
    "find_container_input",
    "image_runtime",
    "pinned_requirements",
    "vendor_wheels",
]
