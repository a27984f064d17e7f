"""The preprocessing configuration (successor of the original ``make_dataset.yaml``)."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np

from hecktorseg.errors import ConfigError
from hecktorseg.io import Layout, layout_spec
from hecktorseg.typing import Triplet, TripletInt

__all__ = [
    "GTVN_SIZE",
    "MAX_GRID_VOXELS",
    "PAPER_PREPROCESS",
    "BoxSource",
    "PreprocessConfig",
    "default_preprocess_config",
]

PAPER_PREPROCESS: dict[str, Any] = {"legacy": True, "pet_stats": "all", "ct_fill": 0.0}
"""The fields in which the authors' preprocessing differs from hecktorseg's default: the
original crop-then-resample with per-image rounded box corners (``legacy``), CT filled with
0 HU outside its field of view, PET z-score statistics over the whole box."""

MAX_GRID_VOXELS = 1 << 30
"""The largest reference grid (voxels) a configuration may ask for: 1024³, 8 GiB for CT and PET in
float32. The paper's grid is 144³ (3 million); a bigger request is a typo, refused before any
memory is allocated."""

BoxSource = Literal["auto", "table", "pet", "label"]
"""Where the head-and-neck box comes from (see the ``box_source`` field of :class:`PreprocessConfig`)."""


def _finite(config: PreprocessConfig) -> None:
    """Every number of the configuration is finite (NaN passes every comparison, so say it first)."""
    for field in attrs.fields(type(config)):
        value = getattr(config, field.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not np.isfinite(v) for v in values):
            shown = list(value) if isinstance(value, tuple) else value
            raise ConfigError(f"{field.name}: must be a finite number, got {shown}")


def _positive(name: str, values: tuple[float, ...]) -> None:
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"{name}: every value must be positive, got {list(values)}")


@attrs.frozen
class PreprocessConfig:
    """How PET/CT cases are resampled onto the reference grid and normalised.

    The defaults give the grid of the HECKTOR 2020 winning solution (1 mm,
    144³ voxels from the box corner) with the fixes described in the docs
    (world-coordinate grid, −1024 HU padding, PET statistics over the PET field
    of view). :meth:`paper` gives the preprocessing the authors trained with
    (``legacy=True``: the original crop-then-resample code; 0 HU fill; PET
    statistics over the whole box).
    """

    spacing: Triplet = attrs.field(
        default=(1.0, 1.0, 1.0),
        metadata={"help": "Voxel size of the reference grid in mm (x, y, z); one value or three."},
    )
    size: TripletInt = attrs.field(
        default=(144, 144, 144),
        metadata={
            "help": "Voxels of the reference grid (x, y, z); one value or three. Sides divisible by 16; "
            "layouts with GTVn (2022, 2025, 2026) default to 144, 144, 176."
        },
    )
    image_interpolation: Literal["linear", "bspline"] = attrs.field(
        default="linear", metadata={"help": "Interpolation of CT and PET: linear or bspline (cubic)."}
    )
    clamp_bspline: bool = attrs.field(
        default=True,
        metadata={"help": "With bspline, clip the result to the input's value range (no overshoot)."},
    )
    label_interpolation: Literal["nearest", "linear"] = attrs.field(
        default="nearest",
        metadata={
            "help": "Label maps: nearest, or linear = each label's indicator resampled linearly, "
            "thresholded at 0.5 (smoother on coarse slices)."
        },
    )
    ct_fill: float = attrs.field(
        default=-1024.0, metadata={"help": "CT value (HU) outside the CT field of view (air)."}
    )
    pet_fill: float = attrs.field(
        default=0.0, metadata={"help": "PET value (SUV) outside the PET field of view."}
    )
    box_source: BoxSource = attrs.field(
        default="auto",
        metadata={
            "help": "Head-and-neck box: table (bbox CSV), pet (from the brain on PET), label (centred on "
            "the label, training only) or auto (table if the case has a box, else pet)."
        },
    )
    box_size_mm: Triplet | None = attrs.field(
        default=None,
        metadata={"help": "Size (mm) of boxes found from PET or the label; null = spacing × size."},
    )
    brain_suv_threshold: float = attrs.field(
        default=3.0, metadata={"help": "PET box: SUV threshold of the brain after smoothing."}
    )
    brain_smoothing_mm: float = attrs.field(
        default=6.0, metadata={"help": "PET box: Gaussian sigma (mm) applied to PET before thresholding."}
    )
    brain_search_fraction: float = attrs.field(
        default=1 / 3,
        metadata={
            "help": "PET box: the brain is the blob with the most voxels in this upper fraction of the "
            "PET's z extent."
        },
    )
    box_offset_mm: Triplet = attrs.field(
        default=(0.0, -30.0, 30.0),
        metadata={
            "help": "PET box placement: x, y offsets (mm) of the box centre from the brain's centre, and "
            "z offset of the box top above the brain's lowest point."
        },
    )
    legacy: bool = attrs.field(
        default=False,
        metadata={
            "help": "Reproduce the original crop-then-resample (per-image rounded box corners, CT "
            "padding 0), as the paper did (set by --preset paper)."
        },
    )
    ct_clip: tuple[float, float] = attrs.field(
        default=(-1024.0, 1024.0),
        metadata={"help": "CT normalisation: clip to this HU range, then divide by its largest magnitude."},
    )
    pet_stats: Literal["fov", "all"] = attrs.field(
        default="fov",
        metadata={
            "help": "PET z-score statistics over the PET field of view (fov) or all voxels (all, the original)."
        },
    )
    check_label_grid: bool = attrs.field(
        default=True,
        metadata={
            "help": "Fail a case whose label map is not on the CT grid (same spacing and direction, "
            "origin and size within label_grid_tolerance_voxels)."
        },
    )
    label_grid_tolerance_voxels: float = attrs.field(
        default=1.0,
        metadata={
            "help": "How far (in CT voxels) the label grid's origin and size may differ from the CT's "
            "(HECKTOR 2022 labels can be off by one voxel; they are resampled in world coordinates)."
        },
    )
    compress: bool = attrs.field(
        default=True, metadata={"help": "Write .nii.gz (compressed) rather than .nii outputs."}
    )

    def __attrs_post_init__(self) -> None:
        _positive("spacing", self.spacing)
        _finite(self)
        if not all(int(v) > 0 for v in self.size):
            raise ConfigError(f"size: every value must be a positive integer, got {list(self.size)}")
        voxels = int(np.prod([int(v) for v in self.size], dtype=object))
        if voxels > MAX_GRID_VOXELS:
            raise ConfigError(
                f"size: a grid of {' × '.join(str(int(v)) for v in self.size)} voxels ({voxels:.3g}) is too "
                f"large; at most {MAX_GRID_VOXELS:.3g} voxels (1024³)",
                hint="the paper's grid is size=(144, 144, 144); check the value",
            )
        if self.box_size_mm is not None:
            _positive("box_size_mm", self.box_size_mm)
        if not self.ct_clip[0] < self.ct_clip[1]:
            raise ConfigError(f"ct_clip: lower bound must be below the upper bound, got {list(self.ct_clip)}")
        if max(abs(self.ct_clip[0]), abs(self.ct_clip[1])) == 0:
            raise ConfigError("ct_clip: cannot be (0, 0)")
        if not 0 < self.brain_search_fraction <= 1:
            raise ConfigError(f"brain_search_fraction: must be in (0, 1], got {self.brain_search_fraction}")
        if self.brain_smoothing_mm < 0:
            raise ConfigError(f"brain_smoothing_mm: must be >= 0, got {self.brain_smoothing_mm}")
        if self.label_grid_tolerance_voxels < 0:
            raise ConfigError(
                f"label_grid_tolerance_voxels: must be >= 0, got {self.label_grid_tolerance_voxels}"
            )

    @classmethod
    def paper(cls, **changes: Any) -> PreprocessConfig:
        """The preprocessing of the paper (``hecktorseg preprocess --preset paper``).

        The defaults with :data:`PAPER_PREPROCESS` applied: ``legacy=True`` (crop to the
        box with its corners rounded per image, then resample; CT and PET filled with
        0 outside their fields of view), ``ct_fill=0.0`` (0 HU, also the fill of the
        training rotation), ``pet_stats="all"``. ``changes`` override any field.
        """
        return cls(**{**PAPER_PREPROCESS, **changes})

    @property
    def extent_mm(self) -> Triplet:
        """Extent of the reference grid in mm (spacing × size)."""
        a, b, c = (float(s * n) for s, n in zip(self.spacing, self.size, strict=True))
        return (a, b, c)

    @property
    def auto_box_size(self) -> Triplet:
        """Size of boxes found from PET or the label (``box_size_mm``, else ``spacing × size``)."""
        return self.box_size_mm if self.box_size_mm is not None else self.extent_mm

    @property
    def suffix(self) -> str:
        """File suffix of the outputs (``.nii.gz`` or ``.nii``)."""
        return ".nii.gz" if self.compress else ".nii"


GTVN_SIZE: TripletInt = (144, 144, 176)
"""Default reference grid (x, y, z voxels) for layouts whose labels include GTVn (2022, 2025, 2026).

The 144 mm box was chosen for the primary tumour alone. Lymph nodes (neck levels II–IV) lie
lower: measured on 96 ``synth --edition 2025`` phantoms, with the box placed from the brain on
PET as usual (top 30 mm above the brain's lowest point), a 144 mm box held 86 % of the GTVn
voxels, 160 mm 95 %, 176 mm all of them (the 0.5 % quantile of GTVn voxels lies 170 mm below
the box top). Rule: the box is extended downwards to the smallest multiple of 16 mm that holds
at least 99.5 % of the GTVn voxels; x and y stay 144 mm (every GTVn and GTVp voxel lies within
±52 mm of the brain's centre in x and within the 144 mm in y). GTVp stays 100 % inside.
"""


def default_preprocess_config(layout: Layout | str | None = None) -> PreprocessConfig:
    """The default :class:`PreprocessConfig` for a dataset layout.

    Layouts whose labels include GTVn (label 2: 2022, 2025, 2026) get the taller grid
    :data:`GTVN_SIZE` (1 mm, 144×144×176) so the box holds the neck nodes; the others
    the paper's 144³.
    """
    if layout is not None and layout_spec(layout).has_nodes:
        return PreprocessConfig(size=GTVN_SIZE)
    return PreprocessConfig()
