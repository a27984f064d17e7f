"""Predicting a whole dataset folder: :func:`predict_dataset`."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from hecktorseg.errors import HecktorsegError
from hecktorseg.inference.predictor import Predictor
from hecktorseg.io import (
    Case,
    Layout,
    check_image_file,
    discover_cases,
    ensure_output_dir,
    write_image,
)
from hecktorseg.io.files import output_file_error
from hecktorseg.preprocessing import PreprocessedCase, select_part
from hecktorseg.reports import BatchReport
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["PROBABILITY_DIR", "UNCERTAINTY_DIR", "predict_dataset"]

logger = logging.getLogger(__name__)

PROBABILITY_DIR = "probabilities"
"""Sub-folder of the output folder holding ``<PID>.nii.gz`` probability maps."""

UNCERTAINTY_DIR = "uncertainty"
"""Sub-folder of the output folder holding ``<PID>.nii.gz`` variance maps."""


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
    force: bool = False,
    workers: int = 0,
    progress: ProgressCallback | None = None,
) -> BatchReport:
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
    force
        Replace existing outputs (otherwise those cases are skipped). An existing
        output that is not a complete image (empty, truncated, not NIfTI) is
        always redone; a folder in the way of an output fails that case.
    workers
        Threads that read and resample the next cases while the models
        predict the current one (0: everything in the calling thread). Reading,
        resampling and the models release the GIL, so 1–2 workers hide most of the
        input time.
    progress
        ``callback(completed, total, patient_id)`` after each case.

    Returns
    -------
    BatchReport
        Done / skipped / failed cases. A failing case is logged and reported;
        the others continue.
    """
    cases = select_part(
        discover_cases(input_dir, layout=layout, bbox_table=bbox_table, strict=False), num_parts, part_id
    )
    out = ensure_output_dir(Path(output_dir))
    done: list[str] = []
    skipped: list[str] = []
    failed: dict[str, str] = {}
    seconds: list[float] = []
    todo: list[Case] = []
    for case in cases:
        outputs = _outputs(out, case.patient_id, save_probabilities, save_uncertainty)
        blocked = [p for p in _outputs(out, case.patient_id, True, True) if p.is_dir()]
        if blocked:
            failed[case.patient_id] = str(output_file_error(IsADirectoryError(), blocked[0], "mask"))
            logger.error("case %s failed: %s", case.patient_id, failed[case.patient_id])
        elif not force and all(p.exists() for p in outputs) and _valid(outputs):
            skipped.append(case.patient_id)
            logger.debug("%s exists; skipped", outputs[0])
        else:
            todo.append(case)
    if progress is not None and skipped:
        progress(len(skipped), len(cases), skipped[-1])
    start = time.perf_counter()
    for i, (case, prepared) in enumerate(_prepared(todo, predictor, workers)):
        pid = case.patient_id
        dest, prob_dest, unc_dest = _outputs(out, pid, True, True)
        try:
            if isinstance(prepared, BaseException):
                raise prepared
            pred = predictor.predict_preprocessed(
                prepared, with_probabilities=save_probabilities, with_uncertainty=save_uncertainty
            )
            # extra maps first, the mask last: an existing mask means the case is complete
            if pred.probabilities is not None:
                write_image(pred.probabilities, prob_dest)
            if pred.uncertainty is not None:
                write_image(pred.uncertainty, unc_dest)
            write_image(pred.mask, dest)
        except _CASE_ERRORS as exc:
            failed[pid] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, HecktorsegError) else str(exc)
            logger.error("case %s failed: %s", pid, failed[pid])
        else:
            done.append(pid)
            now = time.perf_counter()
            seconds.append(now - start)
            logger.debug("case %s: box from %s, %.1f s", pid, pred.box_source, seconds[-1])
        start = time.perf_counter()
        if progress is not None:
            progress(len(skipped) + i + 1, len(cases), pid)
    return BatchReport(
        output_dir=out, done=tuple(done), skipped=tuple(skipped), failed=failed, seconds=tuple(seconds)
    )


_CASE_ERRORS = (HecktorsegError, RuntimeError, ValueError, OSError, MemoryError)
"""Errors that fail one case and let the others go on."""


def _valid(paths: Sequence[Path]) -> bool:
    """Whether earlier outputs are complete images (header and size); invalid ones are redone."""
    for path in paths:
        try:
            check_image_file(path)
        except HecktorsegError as exc:
            logger.warning("earlier output is not a complete image, predicting again: %s", exc)
            return False
    return True


def _outputs(out: Path, pid: str, probabilities: bool, uncertainty: bool) -> list[Path]:
    """The mask, then (if wanted) the probability and uncertainty maps of one case."""
    paths = [out / f"{pid}.nii.gz"]
    if probabilities:
        paths.append(out / PROBABILITY_DIR / f"{pid}.nii.gz")
    if uncertainty:
        paths.append(out / UNCERTAINTY_DIR / f"{pid}.nii.gz")
    return paths


def _prepared(
    cases: Sequence[Case], predictor: Predictor, workers: int
) -> Iterator[tuple[Case, PreprocessedCase | BaseException]]:
    """Yield each case with its preprocessed images (or the error), in order.

    With ``workers > 0`` up to ``workers`` cases are prepared ahead in threads.
    """
    if workers <= 0:
        for case in cases:
            try:
                yield case, predictor.prepare_case(case)
            except _CASE_ERRORS as exc:
                yield case, exc
        return
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hecktorseg-prepare") as pool:
        queue: collections.deque[tuple[Case, cf.Future[PreprocessedCase]]] = collections.deque()
        upcoming = iter(cases)
        for case in itertools.islice(upcoming, workers):
            queue.append((case, pool.submit(predictor.prepare_case, case)))
        while queue:
            case, future = queue.popleft()
            following = next(upcoming, None)
            if following is not None:
                queue.append((following, pool.submit(predictor.prepare_case, following)))
            try:
                yield case, future.result()
            except _CASE_ERRORS as exc:
                yield case, exc
