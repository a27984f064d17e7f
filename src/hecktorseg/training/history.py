"""What a training run records: per-epoch metrics (``metrics.csv``, ``learning_curves.png``) and its result."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from hecktorseg.io import atomic_path, atomic_write_text
from hecktorseg.typing import PathLike

if TYPE_CHECKING:
    from hecktorseg.training.runinfo import RunInfo

__all__ = [
    "METRICS_COLUMNS",
    "EpochMetrics",
    "TrainResult",
    "class_name",
    "epoch_messages",
    "metrics_columns",
    "plot_learning_curves",
    "read_metrics_csv",
    "write_metrics_csv",
]

METRICS_COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "val_dice", "seconds", "train_seconds")
"""Columns of ``metrics.csv`` (binary models: exactly these)."""

_CLASS_NAMES = {1: "gtvp", 2: "gtvn"}


def _floats(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def class_name(label: int) -> str:
    """Short name of a label value in column names: 1 → ``gtvp``, 2 → ``gtvn``, k → ``classk``."""
    return _CLASS_NAMES.get(int(label), f"class{int(label)}")


def metrics_columns(n_foreground: int) -> tuple[str, ...]:
    """Columns of ``metrics.csv`` for a model with ``n_foreground`` foreground classes.

    One foreground class (binary): :data:`METRICS_COLUMNS`. Several (e.g. GTVp + GTVn)
    add, per label ``k``: ``val_dice_<name>`` (mean per-case Dice), then
    ``val_dsc_agg_<name>`` (aggregated Dice), then ``val_score`` (the model-selection
    score, see :mod:`hecktorseg.training.trainer`).
    """
    if n_foreground <= 1:
        return METRICS_COLUMNS
    labels = range(1, n_foreground + 1)
    return (
        *METRICS_COLUMNS,
        *(f"val_dice_{class_name(k)}" for k in labels),
        *(f"val_dsc_agg_{class_name(k)}" for k in labels),
        "val_score",
    )


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
        Mean validation loss and mean per-case Dice at the threshold (several
        classes: the per-case Dice averaged over the foreground classes).
    seconds
        Wall time of the epoch (training + validation).
    train_seconds
        Wall time of the epoch's training steps alone (NaN in histories written before it
        was recorded); ``samples / train_seconds`` is the training throughput.
    val_class_dice
        Several classes only: mean per-case Dice of each foreground label 1 … C−1 over
        the validation cases whose label map holds it (NaN if none does); a case without
        the label scores nothing here, its false positives count in ``val_class_dsc_agg``.
    val_class_dsc_agg
        Several classes only: aggregated Dice ``2ΣTP / Σ(|pred| + |true|)`` over all
        validation cases, per foreground label (1 where both sums are 0).
    val_score
        The model-selection score (binary: ``val_dice``).
    """

    epoch: int
    lr: float
    train_loss: float
    val_loss: float = math.nan
    val_dice: float = math.nan
    seconds: float = 0.0
    val_class_dice: tuple[float, ...] = attrs.field(default=(), converter=_floats)
    val_class_dsc_agg: tuple[float, ...] = attrs.field(default=(), converter=_floats)
    val_score: float = math.nan
    train_seconds: float = math.nan

    @property
    def score(self) -> float:
        """``val_score`` if set, else ``val_dice`` (histories written before scores existed)."""
        return self.val_dice if math.isnan(self.val_score) else self.val_score

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in ``last.pt`` so a resumed run keeps its history)."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochMetrics:
        """Inverse of :meth:`to_dict` (missing optional fields take their defaults)."""
        return cls(
            epoch=int(data["epoch"]),
            lr=float(data["lr"]),
            train_loss=float(data["train_loss"]),
            val_loss=float(data["val_loss"]),
            val_dice=float(data["val_dice"]),
            seconds=float(data["seconds"]),
            val_class_dice=tuple(float(v) for v in data.get("val_class_dice") or ()),
            val_class_dsc_agg=tuple(float(v) for v in data.get("val_class_dsc_agg") or ()),
            val_score=float(data.get("val_score", math.nan)),
            train_seconds=float(data.get("train_seconds", math.nan)),
        )

    def row(self, n_foreground: int) -> list[float | int]:
        """Values in the order of :func:`metrics_columns` (missing per-class values: NaN)."""
        base: list[float | int] = [getattr(self, name) for name in METRICS_COLUMNS]
        if n_foreground <= 1:
            return base
        dice = list(self.val_class_dice) + [math.nan] * (n_foreground - len(self.val_class_dice))
        agg = list(self.val_class_dsc_agg) + [math.nan] * (n_foreground - len(self.val_class_dsc_agg))
        return [*base, *dice[:n_foreground], *agg[:n_foreground], self.val_score]


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "" if math.isnan(value) else repr(float(value))


def _n_foreground(rows: Sequence[EpochMetrics]) -> int:
    return max([len(r.val_class_dice) for r in rows] + [len(r.val_class_dsc_agg) for r in rows] + [1])


def write_metrics_csv(rows: Sequence[EpochMetrics], path: PathLike) -> None:
    """Write ``rows`` as CSV atomically; empty cells for missing values.

    Columns: :data:`METRICS_COLUMNS` for binary models, :func:`metrics_columns` (per-class
    Dice, aggregated Dice, score) when the rows carry per-class values.
    """
    n_fg = _n_foreground(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(metrics_columns(n_fg))
    for row in rows:
        writer.writerow([_fmt(v) for v in row.row(n_fg)])
    atomic_write_text(path, buffer.getvalue())


def read_metrics_csv(path: PathLike) -> list[EpochMetrics]:
    """Read a ``metrics.csv`` written by :func:`write_metrics_csv`."""
    with open(path, encoding="utf-8", newline="") as handle:  # noqa: PTH123
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        dice_cols = [c for c in fields if c.startswith("val_dice_")]
        agg_cols = [c for c in fields if c.startswith("val_dsc_agg_")]
        out = []
        for record in reader:
            values = {k: (v if v != "" else "nan") for k, v in record.items()}
            values["val_class_dice"] = [float(values[c]) for c in dice_cols]
            values["val_class_dsc_agg"] = [float(values[c]) for c in agg_cols]
            out.append(EpochMetrics.from_dict(values))
        return out


def plot_learning_curves(rows: Sequence[EpochMetrics], path: PathLike) -> None:
    """Plot losses (left) and validation Dice (right) per epoch to a PNG, atomically (matplotlib Agg).

    With per-class values (GTVp + GTVn models) the right panel shows the Dice of each
    class (the mean over the validation cases whose truth holds that class, so "nothing
    predicted, nothing there" is not counted as skill), the aggregated Dice of labels 2 …
    (over all validation cases, so false positives in cases without the class count) and
    the selection score (thick line); the legend says how each is made, and the dashed
    line marks the epoch with the best score.
    """
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
        v_epochs = [r.epoch for r in validated]
        n_fg = _n_foreground(validated)
        if n_fg <= 1:
            ax_dice.plot(v_epochs, [r.val_dice for r in validated], "o-", ms=3, color="C2")
            best = max(validated, key=lambda r: r.val_dice)
            ax_dice.set_title(f"best {best.val_dice:.3f} at epoch {best.epoch}")
        else:
            for k in range(n_fg):
                name = class_name(k + 1).upper()
                ax_dice.plot(
                    v_epochs, [r.row(n_fg)[len(METRICS_COLUMNS) + k] for r in validated], "o-", ms=2,
                    label=f"Dice {name}: mean over the cases with {name}",
                )  # fmt: skip
            for k in range(1, n_fg):
                name = class_name(k + 1).upper()
                ax_dice.plot(
                    v_epochs, [r.row(n_fg)[len(METRICS_COLUMNS) + n_fg + k] for r in validated], "s--", ms=2,
                    label=f"DSCagg {name}: 2ΣTP / Σ(|pred| + |true|), all cases",
                )  # fmt: skip
            parts = " and ".join(
                [
                    f"Dice {class_name(1).upper()}",
                    *(f"DSCagg {class_name(k + 1).upper()}" for k in range(1, n_fg)),
                ]
            )
            ax_dice.plot(
                v_epochs, [r.score for r in validated], "-", lw=2.5, color="k",
                label=f"score: mean of {parts} (selects best.pt)",
            )  # fmt: skip
            best = max(validated, key=lambda r: r.score)
            ax_dice.set_title(f"best score {best.score:.3f} at epoch {best.epoch}")
            ax_dice.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        ax_dice.axvline(best.epoch, color="0.6", ls="--", lw=1)
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
        fig.savefig(tmp, format="png", bbox_inches="tight")


def epoch_messages(row: EpochMetrics, best: float, speed: float) -> tuple[str, str]:
    """The log line and the short progress text of a finished epoch.

    Parameters
    ----------
    row
        The epoch's metrics.
    best
        The best validation score so far.
    speed
        Training samples per second.
    """
    multi = bool(row.val_class_dice)
    score = row.val_score if multi else row.val_dice
    message = f"epoch {row.epoch}: loss {row.train_loss:.4f}"
    short = f"loss {row.train_loss:.3f}"
    if math.isfinite(row.val_dice) and multi:
        per_class = ", ".join(
            f"{class_name(k + 1).upper()} {d:.3f}" for k, d in enumerate(row.val_class_dice)
        )
        agg = ", ".join(
            f"{class_name(k + 1).upper()} {d:.3f}" for k, d in enumerate(row.val_class_dsc_agg) if k > 0
        )
        message += (
            f", val loss {row.val_loss:.4f}, val Dice {per_class}"
            + (f", DSCagg {agg}" if agg else "")
            + f", score {score:.3f} (best {best:.3f})"
        )
        short += f" score {score:.3f}"
    elif math.isfinite(row.val_dice):
        message += f", val loss {row.val_loss:.4f}, val Dice {row.val_dice:.3f} (best {best:.3f})"
        short += f" dice {row.val_dice:.3f}"
    short += f" {speed:.2f}/s"
    return message, short


@attrs.frozen
class TrainResult:
    """What a finished (or resumed-and-finished) training run produced.

    Attributes
    ----------
    fold_dir
        ``OUT/fold_K``.
    best_checkpoint, last_checkpoint
        ``best.pt`` (highest validation score) and ``last.pt``.
    best_dice
        Best validation score (NaN if never validated): the mean validation Dice for
        binary models; for GTVp + GTVn models the mean of the GTVp Dice and the GTVn
        aggregated Dice (:func:`hecktorseg.training.classes.selection_score`).
    best_epoch
        1-based epoch of ``best.pt`` (0 if none).
    metrics_csv
        ``metrics.csv``.
    history
        Metrics of every epoch.
    runtime
        What the run resolved to: device, precision, batch, augmentation device
        (:class:`~hecktorseg.training.runinfo.RunInfo`; ``None`` if not recorded).
    """

    fold_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_dice: float
    best_epoch: int
    metrics_csv: Path
    history: tuple[EpochMetrics, ...] = ()
    runtime: RunInfo | None = None

    def best_summary(self) -> str:
        """One line on the selected checkpoint: its score, and for GTVp + GTVn models what makes it up.

        Binary models: ``"best validation Dice 0.812 at epoch 27"``. Several classes:
        ``"best validation score 0.702 (GTVP Dice 0.803, GTVN DSCagg 0.601) at epoch 27"``.
        """
        best = next((r for r in self.history if r.epoch == self.best_epoch), None)
        if best is None or not best.val_class_dice:
            return f"best validation Dice {self.best_dice:.3f} at epoch {self.best_epoch}"
        parts = [f"{class_name(1).upper()} Dice {best.val_class_dice[0]:.3f}"]
        parts += [
            f"{class_name(k + 1).upper()} DSCagg {v:.3f}"
            for k, v in enumerate(best.val_class_dsc_agg)
            if k > 0
        ]
        return f"best validation score {self.best_dice:.3f} ({', '.join(parts)}) at epoch {self.best_epoch}"
