"""Per-epoch metrics: the ``metrics.csv`` table and the ``learning_curves.png`` plot."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from hecktorseg.io import atomic_path, atomic_write_text
from hecktorseg.typing import PathLike

__all__ = ["METRICS_COLUMNS", "EpochMetrics", "plot_learning_curves", "read_metrics_csv", "write_metrics_csv"]

METRICS_COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "val_dice", "seconds")


@attrs.frozen
class EpochMetrics:
    """What one epoch measured (``val_*`` are NaN for epochs without validation).

    Attributes
    ----------
    epoch
        1-based epoch number.
    lr
        Learning rate used during the epoch.
    train_loss
        Mean training loss over the epoch's batches (all processes).
    val_loss, val_dice
        Mean validation loss and mean per-case Dice at the threshold.
    seconds
        Wall time of the epoch (training + validation).
    """

    epoch: int
    lr: float
    train_loss: float
    val_loss: float = math.nan
    val_dice: float = math.nan
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in ``last.pt`` so a resumed run keeps its history)."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochMetrics:
        """Inverse of :meth:`to_dict`."""
        return cls(
            epoch=int(data["epoch"]),
            lr=float(data["lr"]),
            train_loss=float(data["train_loss"]),
            val_loss=float(data["val_loss"]),
            val_dice=float(data["val_dice"]),
            seconds=float(data["seconds"]),
        )


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "" if math.isnan(value) else repr(float(value))


def write_metrics_csv(rows: Sequence[EpochMetrics], path: PathLike) -> None:
    """Write ``rows`` as CSV (columns :data:`METRICS_COLUMNS`; empty cells for missing values), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for row in rows:
        writer.writerow([_fmt(getattr(row, name)) for name in METRICS_COLUMNS])
    atomic_write_text(path, buffer.getvalue())


def read_metrics_csv(path: PathLike) -> list[EpochMetrics]:
    """Read a ``metrics.csv`` written by :func:`write_metrics_csv`."""
    with open(path, encoding="utf-8", newline="") as handle:  # noqa: PTH123
        reader = csv.DictReader(handle)
        return [
            EpochMetrics.from_dict({k: (v if v != "" else "nan") for k, v in record.items()})
            for record in reader
        ]


def plot_learning_curves(rows: Sequence[EpochMetrics], path: PathLike) -> None:
    """Plot losses (left) and validation Dice (right) per epoch to a PNG, atomically (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    epochs = [r.epoch for r in rows]
    validated = [r for r in rows if not math.isnan(r.val_loss)]
    fig = Figure(figsize=(10, 4), dpi=100)
    ax_loss, ax_dice = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r.train_loss for r in rows], label="train loss")
    if validated:
        ax_loss.plot(
            [r.epoch for r in validated], [r.val_loss for r in validated], "o-", ms=3, label="val loss"
        )
        ax_dice.plot([r.epoch for r in validated], [r.val_dice for r in validated], "o-", ms=3, color="C2")
        best = max(validated, key=lambda r: r.val_dice)
        ax_dice.axvline(best.epoch, color="0.6", ls="--", lw=1)
        ax_dice.set_title(f"best {best.val_dice:.3f} at epoch {best.epoch}")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_dice.set_xlabel("epoch")
    ax_dice.set_ylabel("validation Dice")
    ax_dice.set_ylim(0, 1)
    for ax in (ax_loss, ax_dice):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
