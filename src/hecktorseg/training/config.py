"""The training configuration: every knob of the recipe, documented, with its defaults.

:class:`TrainConfig` is the successor of the original ``model_train.yaml``. It is
loaded strictly from YAML (:func:`hecktorseg.config.load_yaml`), every field can be
overridden by a command-line flag (``hecktorseg train --epochs 10 ...``), and the
resolved configuration is written beside the results (``config.yaml``) and into
every checkpoint (``metadata["train"]``).

The defaults follow the paper's optimisation (Adam, cosine warm restarts, 300
epochs, batch 1, Dice + focal) but depart from it in a few places
(mixed precision on CUDA, composed rotation with air fill, mirroring over 1–3 axes,
leave-one-centre-out folds in sorted centre order); :meth:`TrainConfig.paper`
(``hecktorseg train --preset paper``) sets everything as the paper did. See the
"Reproducing the paper" page of the documentation for the table of differences.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

from hecktorseg.errors import ConfigError

__all__ = ["PAPER_TRAIN", "TrainConfig"]


def _positive(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):  # NaN fails every comparison
        raise ConfigError(f"train.{attribute.name}: must be a finite number > 0, got {value!r}")


def _non_negative(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"train.{attribute.name}: must be a finite number >= 0, got {value!r}")


def _probability(instance: Any, attribute: Any, value: Any) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"train.{attribute.name}: must lie in [0, 1], got {value!r}")


PAPER_TRAIN: dict[str, Any] = {
    "model": "senorm_unet",
    "n_filters": 24,
    "reduction": 2,
    "n_classes": None,  # from the data: 1 on the paper's GTVt data; 3 where the labels include GTVn
    "epochs": 300,
    "batch_size": 1,
    "lr": 1e-3,
    "betas": (0.9, 0.99),
    "weight_decay": 0.0,
    "scheduler": "cosine_warm_restarts",
    "t_0": 25,
    "t_mult": 1,
    "eta_min": 1e-5,
    "loss": "dice_focal",
    "batch_dice": False,
    "dice_skip_absent": False,
    "ce_class_weights": None,
    "grad_clip": None,
    "split": "paper",
    "amp": False,
    "channels_last": False,
    "rotation_p": 0.5,
    "max_angle": 44.0,
    "rotation_axes": (1, 3),
    "rotation_mode": "sequential",
    "rotation_fill": (0.0, 0.0),
    "mirror_p": 0.5,
    "mirror_axes": (0, 3),
    "scale_p": 0.0,
    "patch_size": None,
    "threshold": 0.5,
    "val_interval": 1,
}
"""Every field :meth:`TrainConfig.paper` sets: the published recipe (Iantsen et al., HECKTOR 2020)."""


@attrs.frozen
class TrainConfig:
    """Everything that defines a training run.

    The defaults are hecktorseg's recipe (the paper's optimisation with the
    departures listed in the module docstring); :meth:`paper` is the paper's.
    Load it with :func:`hecktorseg.config.load_yaml` (``TrainConfig`` section
    ``train`` optional), change fields with :func:`hecktorseg.config.merge`, and
    pass it to :func:`hecktorseg.training.train`. See ``examples/train_paper.yaml``.
    """

    # --- model -----------------------------------------------------------------------------------
    model: str = attrs.field(
        default="senorm_unet",
        metadata={"help": "Model architecture: 'senorm_unet' (the paper's) or 'baseline_unet'."},
    )
    n_filters: int = attrs.field(
        default=24,
        validator=_positive,
        metadata={"help": "Filters at the first level f (the levels have f, 2f, 4f, 8f, 16f)."},
    )
    reduction: int = attrs.field(
        default=2, validator=_positive, metadata={"help": "Squeeze-and-excitation reduction ratio r."}
    )
    n_classes: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={
            "help": "Output channels. null = from the dataset's manifest: 3 (background/GTVp/GTVn, softmax) "
            "when its labels include 2, else 1. 1 = binary GTVt/GTVp (sigmoid, target label == 1); "
            ">= 2 = softmax over background + labels 1..n-1."
        },
    )
    # --- optimisation ----------------------------------------------------------------------------
    epochs: int = attrs.field(default=300, validator=_positive, metadata={"help": "Number of epochs."})
    batch_size: int = attrs.field(
        default=1, validator=_positive, metadata={"help": "Samples per batch (per process under torchrun)."}
    )
    lr: float = attrs.field(default=1e-3, validator=_positive, metadata={"help": "Adam learning rate."})
    betas: tuple[float, float] = attrs.field(default=(0.9, 0.99), metadata={"help": "Adam betas."})
    weight_decay: float = attrs.field(
        default=0.0, validator=_non_negative, metadata={"help": "Adam weight decay (L2)."}
    )
    scheduler: Literal["cosine_warm_restarts", "constant"] = attrs.field(
        default="cosine_warm_restarts",
        metadata={"help": "Learning-rate schedule, stepped once per epoch."},
    )
    t_0: int = attrs.field(
        default=25, validator=_positive, metadata={"help": "Cosine warm restarts: epochs of the first cycle."}
    )
    t_mult: int = attrs.field(
        default=1, validator=_positive, metadata={"help": "Cosine warm restarts: cycle length multiplier."}
    )
    eta_min: float = attrs.field(
        default=1e-5,
        validator=_non_negative,
        metadata={"help": "Cosine warm restarts: minimum learning rate."},
    )
    loss: str = attrs.field(
        default="auto",
        metadata={
            "help": "Loss: 'dice_focal' (the paper's, weights 1 + 1), 'dice_ce' (Dice + cross-entropy), "
            "'dice' or 'focal'; 'auto' = dice_focal for one output, dice_ce for GTVp + GTVn."
        },
    )
    batch_dice: bool = attrs.field(
        default=False,
        metadata={"help": "Dice term over the whole batch (one per class) instead of per sample."},
    )
    ce_class_weights: tuple[float, ...] | None = attrs.field(
        default=None,
        metadata={
            "help": "Loss dice_ce: weight of each class in the cross-entropy (background first); null = "
            "all 1, except the GTVp + GTVn default (see the training docs)."
        },
    )
    dice_skip_absent: bool | None = attrs.field(
        default=None,
        metadata={
            "help": "Leave classes that are absent from a sample's label map out of its Dice term "
            "(else they pull that class towards 0 everywhere); null = off for one output (the paper), "
            "on for GTVp + GTVn."
        },
    )
    grad_clip: float | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={"help": "Clip the gradient norm to this value (null: no clipping, as in the paper)."},
    )
    # --- cross-validation ------------------------------------------------------------------------
    split: Literal["centre", "random", "file", "paper"] = attrs.field(
        default="centre",
        metadata={
            "help": "Folds: 'centre' = leave one centre out (fold k validates on the k-th centre in sorted "
            "order; n_folds is ignored), 'random' = seeded k-fold, 'file' = read split_file, 'paper' = "
            "the paper's eight folds by patient id (0-3: centre folds s0-s3, 4-7: random folds ns0-ns3)."
        },
    )
    n_folds: int = attrs.field(
        default=4, validator=_positive, metadata={"help": "Number of folds of the 'random' split."}
    )
    fold: int = attrs.field(
        default=0, validator=_non_negative, metadata={"help": "Which fold to train (0-based)."}
    )
    split_file: str | None = attrs.field(
        default=None,
        metadata={
            "help": 'JSON split for split=\'file\': {"folds": [{"train": [ids], "val": [ids]}, ...]} '
            "(a fold without 'train' trains on all other cases)."
        },
    )
    # --- reproducibility and hardware ------------------------------------------------------------
    seed: int = attrs.field(
        default=0, metadata={"help": "Seed of weights, data order and augmentation (all derived per epoch)."}
    )
    deterministic: bool = attrs.field(
        default=False,
        metadata={"help": "Use deterministic algorithms only (bit-exact reruns; may be slower on GPU)."},
    )
    device: Literal["auto", "cpu", "cuda"] = attrs.field(
        default="auto",
        metadata={
            "help": "Where to train: 'auto' = CUDA if available, else CPU (torchrun: cuda:LOCAL_RANK)."
        },
    )
    amp: bool | None = attrs.field(
        default=None,
        metadata={
            "help": "Mixed precision. null = automatic: on with CUDA (float16 + gradient scaling), off on "
            "CPU (fp32); true on CPU uses bfloat16 autocast, 1.8-3x faster on CPUs with "
            "AVX512-BF16/AMX (with channels_last) and equivalent in convergence on the phantoms: see the "
            "performance notes."
        },
    )
    amp_dtype: Literal["auto", "float16", "bfloat16"] = attrs.field(
        default="auto",
        metadata={"help": "Autocast dtype: 'auto' = float16 on CUDA, bfloat16 on CPU."},
    )
    channels_last: bool = attrs.field(
        default=False,
        metadata={
            "help": "Use the channels-last-3d memory format (a 64^3 float32 training step took 27 % less "
            "time on a 2-core CPU; with amp it is the faster layout there; on an H200 it was no faster)."
        },
    )
    compile: bool = attrs.field(
        default=False,
        metadata={
            "help": "Compile the network with torch.compile (an option, not a default: compiling the 144^3 "
            "training step took over a minute on an H200 and its speed is not measured yet)."
        },
    )
    tf32: bool = attrs.field(
        default=True,
        metadata={
            "help": "CUDA only: let float32 convolutions and matrix products use TF32 tensor cores "
            "(torch's default for convolutions; matrix products too when true). false = full float32. "
            "Set at the start of every run and recorded; no effect on the CPU."
        },
    )
    cudnn_benchmark: bool = attrs.field(
        default=False,
        metadata={
            "help": "CUDA only: let cuDNN time its convolution algorithms at the first step of each shape. "
            "Off by default: on an H200 (144^3, f = 24, batch 2, fp16) it made the first step take 17 s "
            "instead of 0.2 s, for a step no faster (151 against 146 ms). Ignored with deterministic."
        },
    )
    augment_device: Literal["auto", "cpu", "cuda"] = attrs.field(
        default="auto",
        metadata={
            "help": "Where rotation and mirroring run: 'cpu' = per sample in the loader workers; 'cuda' = "
            "batched on the training GPU (same random draws, volumes kept on the GPU when they fit); "
            "'auto' = 'cuda' when training on CUDA, else 'cpu'."
        },
    )
    log_interval: int = attrs.field(
        default=10,
        validator=_positive,
        metadata={
            "help": "Report the running training loss (and check that it is finite) every N steps; the "
            "loss stays on the device in between, so the GPU never waits for the host."
        },
    )
    num_threads: int | None = attrs.field(
        default=None, validator=_positive, metadata={"help": "CPU threads for torch (null: torch's default)."}
    )
    num_workers: int = attrs.field(
        default=4,
        validator=_non_negative,
        metadata={
            "help": "Data-loading worker processes per training process (0: load in the training process). "
            "One augmented 144^3 sample (rotation, mirroring) takes about 1 s on one core, so a fast GPU "
            "needs about 4."
        },
    )
    cache: bool = attrs.field(
        default=True,
        metadata={"help": "Keep the preprocessed volumes in memory (about 25 MB per 144^3 case)."},
    )
    # --- augmentation (training only; applied to HU / SUV before normalisation) -------------------
    rotation_p: float = attrs.field(
        default=0.5, validator=_probability, metadata={"help": "Probability of a random rotation."}
    )
    max_angle: float = attrs.field(
        default=44.0,
        validator=_non_negative,
        metadata={
            "help": "Rotation: integer angles in [-max_angle, max_angle] degrees about each chosen axis."
        },
    )
    rotation_axes: tuple[int, int] = attrs.field(
        default=(1, 3),
        metadata={"help": "Rotation: a random number of axes (min, max) from 1..3 is rotated."},
    )
    rotation_mode: Literal["composed", "sequential"] = attrs.field(
        default="composed",
        metadata={
            "help": "Rotation: 'composed' = the axes' rotations in one interpolation, angles uniform in "
            "[-max_angle, max_angle]; 'sequential' = the paper's: the axes in random order, one "
            "interpolation each, angle magnitude uniform in 0..max_angle with a random sign."
        },
    )
    rotation_fill: tuple[float, float] | None = attrs.field(
        default=None,
        metadata={
            "help": "Rotation: raw-unit fill (CT HU, PET SUV) of the area rotated in; null = the dataset's "
            "ct_fill, pet_fill (-1024 HU, 0 by default); the paper: 0,0 (0 HU = water)."
        },
    )
    mirror_p: float = attrs.field(
        default=0.5,
        validator=_probability,
        metadata={"help": "Probability of drawing a mirroring (over mirror_axes random axes)."},
    )
    mirror_axes: tuple[int, int] = attrs.field(
        default=(1, 3),
        metadata={
            "help": "Mirroring: number of axes flipped, uniform in (min, max); the paper's 0,3 flips a "
            "sample at all with probability mirror_p x 3/4 (0.375)."
        },
    )
    scale_p: float = attrs.field(
        default=0.0,
        validator=_probability,
        metadata={"help": "Extra (not in the paper): probability of a random isotropic zoom."},
    )
    scale_range: tuple[float, float] = attrs.field(
        default=(0.9, 1.1), metadata={"help": "Extra: zoom factor range of the random zoom."}
    )
    # --- patches (training only) ------------------------------------------------------------------
    patch_size: tuple[int, int, int] | None = attrs.field(
        default=None,
        metadata={
            "help": "Train on patches of this size (x, y, z voxels, multiples of 16) cut from the augmented "
            "volumes; validation and inference then go window by window. null: whole volumes (the paper)."
        },
    )
    foreground_p: float = attrs.field(
        default=0.33,
        validator=_probability,
        metadata={
            "help": "With patch_size: probability that a patch is centred on a voxel of a foreground class "
            "drawn uniformly among those present (GTVn as often as GTVp)."
        },
    )
    # --- validation and output -------------------------------------------------------------------
    threshold: float = attrs.field(
        default=0.5,
        validator=_probability,
        metadata={"help": "Probability threshold of the validation Dice (model selection)."},
    )
    val_interval: int = attrs.field(
        default=1, validator=_positive, metadata={"help": "Validate every N epochs (and after the last)."}
    )
    max_train_batches_per_epoch: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={"help": "Stop each epoch after this many batches (quick runs; null: whole epoch)."},
    )
    max_val_batches: int | None = attrs.field(
        default=None,
        validator=_positive,
        metadata={"help": "Validate on at most this many batches (quick runs; null: all)."},
    )
    plot: bool = attrs.field(
        default=True, metadata={"help": "Write learning_curves.png after each validation."}
    )

    def __attrs_post_init__(self) -> None:
        lo, hi = self.rotation_axes
        if not 1 <= lo <= hi <= 3:
            raise ConfigError(f"train.rotation_axes: need 1 <= min <= max <= 3, got {self.rotation_axes!r}")
        lo, hi = self.mirror_axes
        if not 0 <= lo <= hi <= 3:
            raise ConfigError(f"train.mirror_axes: need 0 <= min <= max <= 3, got {self.mirror_axes!r}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ConfigError(f"train.scale_range: need 0 < min <= max, got {self.scale_range!r}")
        for name, beta in zip(("betas[0]", "betas[1]"), self.betas, strict=True):
            if not 0.0 <= beta < 1.0:
                raise ConfigError(f"train.{name}: must lie in [0, 1), got {beta!r}")
        if self.patch_size is not None and (
            len(self.patch_size) != 3 or any(int(v) < 16 or int(v) % 16 for v in self.patch_size)
        ):
            raise ConfigError(
                f"train.patch_size: need three sides (x, y, z) that are multiples of 16, got {self.patch_size!r}"
            )
        if self.split == "file" and not self.split_file:
            raise ConfigError("train.split_file: required when split is 'file'")
        if self.split == "random" and self.fold >= self.n_folds:
            raise ConfigError(f"train.fold: {self.fold} is not below n_folds={self.n_folds}")
        if self.split == "paper" and self.fold >= 8:
            raise ConfigError(
                f"train.fold: the paper has eight folds (0-3: centre folds s0-s3, 4-7: random folds "
                f"ns0-ns3), got {self.fold}"
            )

    @classmethod
    def paper(cls, **changes: Any) -> TrainConfig:
        """The paper's training recipe (``hecktorseg train --preset paper``).

        :data:`PAPER_TRAIN` on top of the defaults: fp32 without mixed precision (also on
        CUDA, so the best checkpoint is chosen from fp32 validation), Adam (lr 1e-3,
        betas 0.9, 0.99), cosine warm restarts (T_0 25, eta_min 1e-5), 300 epochs,
        batch 1, Dice + focal; the paper's augmentation (rotation p 0.5 about 1-3 axes
        one after the other, integer angles 0-44 degrees with a random sign, 0 fill;
        mirroring p 0.5 over 0-3 axes) and the paper's eight folds by patient id
        (``split="paper"``). ``changes`` override any field.
        """
        return cls(**{**PAPER_TRAIN, **changes})
