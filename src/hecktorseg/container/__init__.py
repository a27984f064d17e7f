"""Grand Challenge submission for HECKTOR 2025/2026 (Task 1, GTVp + GTVn).

- :func:`container_predict`: the inside of the image — one case from
  ``/input/images/{ct,pet}/*.mha`` to
  ``/output/images/tumor-lymph-node-segmentation/output.mha`` (labels 0/1/2 on the CT
  grid), identical to ``hecktorseg predict``;
- :func:`build_context`: a ready Docker build context (Dockerfile pinned to a CPU
  PyTorch and to this hecktorseg, the checkpoints, the entry point, a script that runs
  the image on a sample case, a README).
"""

from hecktorseg.container.build import (
    BUILD_FILES,
    TORCH_INDEX_URL,
    TORCH_VERSION,
    BuildResult,
    build_context,
    pinned_requirements,
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
)

__all__ = [
    "BUILD_FILES",
    "CT_DIR",
    "EHR_FILE",
    "OUTPUT_RELPATH",
    "PET_DIR",
    "TORCH_INDEX_URL",
    "TORCH_VERSION",
    "BuildResult",
    "ContainerInput",
    "ContainerResult",
    "build_context",
    "container_predict",
    "find_container_input",
    "pinned_requirements",
]
