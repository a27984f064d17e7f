"""What the review page flags, as data: the settings, one case's statistics and the flag records.

A flag is a :class:`ReviewFlag` record — a name shown in the table, a sentence
shown as its tooltip and a predicate on :class:`CaseStats` — and
:data:`REVIEW_FLAGS` is the table of them. A new flag is a new record there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

__all__ = ["REVIEW_FLAGS", "CaseStats", "ReviewFlag", "ReviewSettings", "flags_of"]


@attrs.frozen
class ReviewSettings:
    """Thresholds of the flags and the size of each case's viewer data."""

    min_component_ml: float = attrs.field(
        default=0.2, metadata={"help": "Predicted components smaller than this (ml) are flagged."}
    )
    uncertain_std: float = attrs.field(
        default=0.2,
        metadata={"help": "A voxel is uncertain where the models' probabilities differ by more (std)."},
    )
    max_uncertain_fraction: float = attrs.field(
        default=0.5,
        metadata={
            "help": "Flag a case whose uncertain volume exceeds this fraction of its predicted volume."
        },
    )
    margin_mm: float = attrs.field(
        default=10.0, metadata={"help": "Margin (mm) kept around the head-and-neck box in the viewer."}
    )
    max_voxels: int = attrs.field(
        default=1_000_000,
        metadata={"help": "Most voxels of a case's viewer grid (coarser spacing above); sets its size."},
    )
    min_spacing_mm: float = attrs.field(
        default=1.0, metadata={"help": "Finest in-plane spacing (mm) of the viewer grid."}
    )


@attrs.frozen
class CaseStats:
    """What the review measured on one case's prediction (volumes in ml, on the CT grid).

    Attributes
    ----------
    gtvp_ml, gtvn_ml
        Predicted GTVp (label 1) and GTVn (label 2) volumes.
    gtvn_components
        26-connected components of the predicted GTVn.
    suvmax_gtvp
        Highest PET SUV inside the predicted GTVp (NaN without GTVp).
    component_ml
        Volume of every predicted component (GTVp and GTVn), largest first.
    touches_border
        Whether the prediction reaches the outermost voxel layer of the head-and-neck box
        (the box the prediction was made in, clipped to the CT), where it may have been cut off.
    uncertain_ml
        Volume where the models' standard deviation exceeds ``uncertain_std``; ``None``
        without an uncertainty map.
    """

    gtvp_ml: float
    gtvn_ml: float
    gtvn_components: int
    suvmax_gtvp: float
    component_ml: tuple[float, ...] = ()
    touches_border: bool = False
    uncertain_ml: float | None = None

    @property
    def total_ml(self) -> float:
        """Predicted GTVp + GTVn volume."""
        return self.gtvp_ml + self.gtvn_ml


Predicate = Callable[[CaseStats, ReviewSettings], bool]


@attrs.frozen
class ReviewFlag:
    """One thing a reviewer wants to see first.

    Attributes
    ----------
    name
        Shown in the table's flags column (and searched by its filter).
    description
        What it means, shown as the flag's tooltip and in the page's legend.
    predicate
        ``predicate(stats, settings)`` is true where the flag applies.
    """

    name: str
    description: str
    predicate: Predicate


def _disagree(stats: CaseStats, settings: ReviewSettings) -> bool:
    if stats.uncertain_ml is None:
        return False
    return stats.uncertain_ml > settings.max_uncertain_fraction * max(
        stats.total_ml, settings.min_component_ml
    )


REVIEW_FLAGS: tuple[ReviewFlag, ...] = (
    ReviewFlag("empty", "the prediction has no GTVp or GTVn voxel", lambda s, _: s.total_ml == 0),
    ReviewFlag(
        "box border",
        "the prediction reaches the border of the head-and-neck box: it may be cut off",
        lambda s, _: s.touches_border,
    ),
    ReviewFlag(
        "GTVn without GTVp",
        "lymph nodes are predicted but no primary tumour",
        lambda s, _: s.gtvn_ml > 0 and s.gtvp_ml == 0,
    ),
    ReviewFlag(
        "small component",
        "a predicted component is smaller than the size threshold (min_component_ml)",
        lambda s, cfg: any(v < cfg.min_component_ml for v in s.component_ml),
    ),
    ReviewFlag(
        "models disagree",
        "the models disagree over a volume larger than max_uncertain_fraction of the prediction",
        _disagree,
    ),
)
"""The flags, in the order the table shows them."""

ERROR_FLAG = "error"
"""The flag of a case that could not be reviewed (its row says why)."""


def flags_of(
    stats: CaseStats, settings: ReviewSettings, flags: tuple[ReviewFlag, ...] = REVIEW_FLAGS
) -> tuple[str, ...]:
    """The names of the flags that apply to a case, in table order."""
    return tuple(flag.name for flag in flags if flag.predicate(stats, settings))


def finite_or_none(value: float) -> float | None:
    """``value``, or ``None`` where it is NaN or infinite (for strict JSON)."""
    return value if math.isfinite(value) else None
