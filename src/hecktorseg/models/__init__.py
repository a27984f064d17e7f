"""Networks of hecktorseg: the SE-norm U-Net (HECKTOR 2020 winner), the plain baseline U-Net,
a name registry, checkpoints (ours and the original implementation's), and export.
"""

from hecktorseg.models.baseline_unet import BaselineUNet
from hecktorseg.models.checkpoint import (
    LoadedCheckpoint,
    load_checkpoint,
    read_checkpoint_file,
    save_checkpoint,
)
from hecktorseg.models.export import EXPORT_SUFFIXES, export_model, verify_export
from hecktorseg.models.layers import (
    BasicConv3d,
    Conv3d,
    ResidualSEConv3d,
    SEConv3d,
    SENorm3d,
    SEUpsample3d,
    SEWeights3d,
)
from hecktorseg.models.original import (
    convert_original_checkpoint,
    load_original_checkpoint,
    save_original_checkpoint,
    swap_kernel_axes,
)
from hecktorseg.models.registry import (
    MAX_PARAMETERS,
    available_models,
    build_model,
    probe_model,
    register_model,
    unwrap_model,
)
from hecktorseg.models.senorm_unet import SENormUNet
from hecktorseg.models.utils import SIZE_DIVISOR, check_input_shape, probabilities, split_output_head

__all__ = [
    "EXPORT_SUFFIXES",
    "MAX_PARAMETERS",
    "SIZE_DIVISOR",
    "BaselineUNet",
    "BasicConv3d",
    "Conv3d",
    "LoadedCheckpoint",
    "ResidualSEConv3d",
    "SEConv3d",
    "SENorm3d",
    "SENormUNet",
    "SEUpsample3d",
    "SEWeights3d",
    "available_models",
    "build_model",
    "check_input_shape",
    "convert_original_checkpoint",
    "export_model",
    "load_checkpoint",
    "load_original_checkpoint",
    "probabilities",
    "probe_model",
    "read_checkpoint_file",
    "register_model",
    "save_checkpoint",
    "save_original_checkpoint",
    "split_output_head",
    "swap_kernel_axes",
    "unwrap_model",
    "verify_export",
]
