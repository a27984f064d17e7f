"""Predicting a whole dataset folder: :func:`predict_dataset`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import attrs

from hecktorseg.errors import HecktorsegError
from hecktorseg.inference.predictor import Predictor
from hecktorseg.io import Layout, discover_cases, write_image
from hecktorseg.preprocessing import select_part
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["PROBABILITY_DIR", "UNCERTAINTY_DIR", "PredictReport", "predict_dataset"]

logger = logging.getLogger(__name__)

PROBABILITY_DIR = "probabilities"
"""Sub-folder of the output folder holding ``<PID>.nii.gz`` probability maps."""

UNCERTAINTY_DIR = "uncertainty"
"""Sub-folder of the output folder holding ``<PID>.nii.gz`` variance maps."""


@attrs.frozen
class PredictReport:
    """What :func:`predict_dataset` did.

    Attributes
    ----------
    output_dir
        Where the masks are.
    done
        Patient ids predicted in this run.
    skipped
        Patient ids whose output already existed (not overwritten).
    failed
        Patient id → reason, for cases that could not be predicted.
    seconds
        Wall-clock time per predicted case (same order as ``done``).
    """

    output_dir: Path
    done: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: dict[str, str] = attrs.field(factory=dict)
    seconds: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether no case failed."""
        return not self.failed


def predict_dataset(
    input_dir: PathLike,
    output_dir: PathLike,
    predictor: Predictor,
    *,
    layout: Layout | str | None = None,
    bbox_table: PathLike | None = None,
    save_probabilities: bool = False,
    save_uncertainty: bool = False,
    num_parts: int = 1,
    part_id: int = 0,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> PredictReport:
    """Predict every case of a raw dataset and write ``OUTPUT_DIR/<PID>.nii.gz`` on the CT grid.

    Parameters
    ----------
    input_dir
        Raw cases in any layout :func:`hecktorseg.io.discover_cases` reads (labels are ignored).
    output_dir
        Destination; masks are uint8 with the CT's size, spacing, origin and
        direction, written atomically.
    predictor
        The loaded models (see :meth:`Predictor.from_checkpoints`).
    layout
        Force the input layout.
    bbox_table
        Box table (world mm) to use instead of the layout's own; cases without
        a box get one from the PET (``box_source="auto"``).
    save_probabilities
        Also write ``OUTPUT_DIR/probabilities/<PID>.nii.gz`` (float32).
    save_uncertainty
        Also write ``OUTPUT_DIR/uncertainty/<PID>.nii.gz`` (variance over models × mirrorings).
    num_parts, part_id
        Predict only share ``part_id`` of ``num_parts`` (sorted ids, index % P == K, as :func:`hecktorseg.preprocessing.select_part`).
    overwrite
        Replace existing outputs (otherwise those cases are skipped).
    progress
        ``callback(completed, total, patient_id)`` after each case.

    Returns
    -------
    PredictReport
        Done / skipped / failed cases. A failing case is logged and reported;
        the others continue.
    """
    cases = select_part(discover_cases(input_dir, layout=layout, bbox_table=bbox_table), num_parts, part_id)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    skipped: list[str] = []
    failed: dict[str, str] = {}
    seconds: list[float] = []
    for i, case in enumerate(cases):
        pid = case.patient_id
        dest = out / f"{pid}.nii.gz"
        prob_dest = out / PROBABILITY_DIR / f"{pid}.nii.gz"
        unc_dest = out / UNCERTAINTY_DIR / f"{pid}.nii.gz"
        wanted = (
            [dest] + ([prob_dest] if save_probabilities else []) + ([unc_dest] if save_uncertainty else [])
        )
        if not overwrite and all(p.exists() for p in wanted):
            skipped.append(pid)
            logger.debug("%s exists; skipped", dest)
        else:
            start = time.perf_counter()
            try:
                pred = predictor.predict_case(
                    case, with_probabilities=save_probabilities, with_uncertainty=save_uncertainty
                )
                # extra maps first, the mask last: an existing mask means the case is complete
                if pred.probabilities is not None:
                    write_image(pred.probabilities, prob_dest)
                if pred.uncertainty is not None:
                    write_image(pred.uncertainty, unc_dest)
                write_image(pred.mask, dest)
            except (HecktorsegError, RuntimeError, ValueError, OSError, MemoryError) as exc:
                failed[pid] = (
                    f"{type(exc).__name__}: {exc}" if not isinstance(exc, HecktorsegError) else str(exc)
                )
                logger.error("case %s failed: %s", pid, failed[pid])
            else:
                done.append(pid)
                seconds.append(time.perf_counter() - start)
                logger.debug("case %s: box from %s, %.1f s", pid, pred.box_source, seconds[-1])
        if progress is not None:
            progress(i + 1, len(cases), pid)
    return PredictReport(
        output_dir=out, done=tuple(done), skipped=tuple(skipped), failed=failed, seconds=tuple(seconds)
    )
