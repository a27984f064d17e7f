"""Preprocessing a whole dataset: parallel, resumable, split into parts for clusters.

This module runs the batch loop (:func:`preprocess_dataset`, one case at a time or in a worker
pool) under the output folder's lock. The worker pool lives in the private
``hecktorseg.preprocessing._workers``, the up-to-date checks of a resumed run in
:mod:`hecktorseg.preprocessing.resume` and the checks before a run in
:mod:`hecktorseg.preprocessing.checks`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import attrs

from hecktorseg._version import __version__
from hecktorseg.errors import ConfigError, DataError, HecktorsegError
from hecktorseg.io import (
    Case,
    Layout,
    ensure_output_dir,
    write_image,
)
from hecktorseg.io.files import is_stale_temp, output_lock
from hecktorseg.preprocessing._workers import _worker_pool
from hecktorseg.preprocessing.case import preprocess_case
from hecktorseg.preprocessing.checks import GRID_MULTIPLE, check_trainable_size, missing_labels
from hecktorseg.preprocessing.config import PreprocessConfig, default_preprocess_config
from hecktorseg.preprocessing.manifest import MANIFEST_NAME, merge_manifests
from hecktorseg.preprocessing.record import ManifestEntry, _now, record_path, write_record
from hecktorseg.preprocessing.resume import _clean_case_dir, _sources, _up_to_date
from hecktorseg.reports import BatchReport
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = [
    "GRID_MULTIPLE",
    "check_trainable_size",
    "missing_labels",
    "output_paths",
    "preprocess_dataset",
    "select_part",
]

logger = logging.getLogger(__name__)


@attrs.frozen
class _Outcome:
    patient_id: str
    status: Literal["done", "skipped", "failed"]
    reason: str = ""
    outside: dict[int, int] = attrs.field(factory=dict)
    totals: dict[int, int] = attrs.field(factory=dict)


def output_paths(out_dir: PathLike, patient_id: str, config: PreprocessConfig) -> dict[str, Path]:
    """Output files of one case: ``OUT/<PID>/<PID>_ct``, ``_pt`` and ``_ct_gtvt`` (+ suffix)."""
    folder = Path(out_dir) / patient_id
    sfx = config.suffix
    return {
        "ct": folder / f"{patient_id}_ct{sfx}",
        "pet": folder / f"{patient_id}_pt{sfx}",
        "label": folder / f"{patient_id}_ct_gtvt{sfx}",
    }


def select_part(cases: Sequence[Case], num_parts: int, part_id: int) -> list[Case]:
    """The deterministic share of part ``part_id`` of ``num_parts``: sorted ids, index % P == K.

    Raises
    ------
    ConfigError
        ``num_parts < 1`` or ``part_id`` outside ``0 .. num_parts - 1``.
    """
    if num_parts < 1:
        raise ConfigError(f"num_parts must be at least 1, got {num_parts}")
    if not 0 <= part_id < num_parts:
        raise ConfigError(
            f"part_id must be in 0..{num_parts - 1}, got {part_id}",
            hint="with a Slurm array (sbatch --array=0-(P-1)) use part_id=$SLURM_ARRAY_TASK_ID",
        )
    ordered = sorted(cases, key=lambda c: c.patient_id)
    return [c for i, c in enumerate(ordered) if i % num_parts == part_id]


def _run_case(
    case: Case, config: PreprocessConfig, out_dir: str, force: bool, check_intensities: bool = True
) -> _Outcome:
    """Process one case (in a worker or in-process); never raises."""
    out = Path(out_dir)
    pid = case.patient_id
    owned = False  # may we delete files in OUT/<PID>? only once we know no input lives there
    try:
        if not pid or pid in (".", "..") or any(c in pid for c in "/\\"):
            raise DataError(f"invalid patient id {pid!r}", hint="patient ids name folders: no slashes")
        sources = _sources(case)
        if not force and _up_to_date(case, sources, config, out):
            return _Outcome(pid, "skipped")
        folder = out / pid
        inside = [src.path for src in sources.values() if folder.resolve() in src.path.resolve().parents]
        if inside:
            raise ConfigError(
                f"patient {pid}: the output folder holds this case's input {inside[0].name}",
                path=folder,
                hint="write the preprocessed data to a separate folder",
            )
        owned = True
        # The record goes first: without it the case counts as not done, whatever else is there.
        with contextlib.suppress(FileNotFoundError):
            record_path(out, pid).unlink()
        _clean_case_dir(folder, pid)
        result = preprocess_case(case, config, check_intensities=check_intensities)
        paths = output_paths(out, pid, config)
        write_image(result.ct, paths["ct"], compress=config.compress)
        write_image(result.pet, paths["pet"], compress=config.compress)
        if result.label is not None:
            write_image(result.label, paths["label"], compress=config.compress)
        entry = ManifestEntry(
            patient_id=pid,
            centre=case.centre,
            ct_path=paths["ct"],
            pet_path=paths["pet"],
            label_path=paths["label"] if result.label is not None else None,
            sources=sources,
            ct_geometry=result.ct_geometry,
            pet_geometry=result.pet_geometry,
            label_geometry=result.label_geometry,
            reference=result.reference,
            bbox=result.bbox,
            box_source=result.box_source,
            config=config,
            processed_at=_now(),
            hecktorseg_version=__version__,
            label_voxels=result.label_voxels,
            label_voxels_outside_box=result.label_voxels_outside_box,
            clinical=case.clinical,
            layout=None if case.layout is None else case.layout.value,
        )
        write_record(entry, out)
        lost = {k: v for k, v in result.label_voxels_outside_box.items() if v}
        return _Outcome(pid, "done", outside=lost, totals=result.label_voxels)
    except HecktorsegError as exc:
        if owned:
            _clean_case_dir(out / pid, pid)
        return _Outcome(pid, "failed", str(exc))
    except Exception as exc:  # a bug or an unexpected library error: report it, keep going
        logger.debug("unexpected error for %s:\n%s", pid, traceback.format_exc())
        if owned:
            _clean_case_dir(out / pid, pid)
        text = str(exc).strip().splitlines()
        return _Outcome(pid, "failed", f"unexpected {type(exc).__name__}: {text[-1] if text else ''}")


def _resolve_cases(
    input_dir_or_cases: PathLike | Sequence[Case],
    layout: Layout | str | None,
    bbox_table: PathLike | None,
) -> list[Case]:
    if isinstance(input_dir_or_cases, (str, os.PathLike)):
        from hecktorseg.io import discover_cases

        return discover_cases(input_dir_or_cases, layout=layout, bbox_table=bbox_table, strict=False)
    cases = list(input_dir_or_cases)
    if bbox_table is not None:
        from hecktorseg.io import read_bbox_table

        boxes = read_bbox_table(bbox_table)
        cases = [attrs.evolve(c, bbox=boxes.get(c.patient_id, c.bbox)) for c in cases]
    return cases


def preprocess_dataset(
    input_dir_or_cases: PathLike | Sequence[Case],
    output_dir: PathLike,
    config: PreprocessConfig | None = None,
    *,
    layout: Layout | str | None = None,
    bbox_table: PathLike | None = None,
    workers: int = 1,
    num_parts: int = 1,
    part_id: int = 0,
    force: bool = False,
    check_intensities: bool = True,
    allow_missing_labels: bool = False,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Preprocess every case of a dataset into ``output_dir``.

    Writes ``OUT/<PID>/<PID>_ct``, ``_pt`` and (labelled cases) ``_ct_gtvt``
    images (``.nii.gz``), a record per case and the merged ``OUT/manifest.json``
    (see :mod:`hecktorseg.preprocessing.manifest`). A case whose outputs exist
    and whose sources (SHA-256), box and config are unchanged is skipped unless
    ``force``. A failing case is reported with its reason; the others finish.

    Parameters
    ----------
    input_dir_or_cases
        A dataset folder (read with :func:`hecktorseg.io.discover_cases`) or a list of cases.
    output_dir
        Output folder (created).
    config
        Preprocessing settings; by default :func:`~hecktorseg.preprocessing.default_preprocess_config`
        of the cases' layout (a taller box for layouts with lymph nodes).
    layout
        Force the dataset layout of a folder.
    bbox_table
        Box table (CSV) to use instead of the layout's own.
    workers
        Processes working in parallel (spawned; SimpleITK uses one thread in each).
    num_parts, part_id
        Process only share ``part_id`` of ``num_parts`` (sorted ids, index % P == K),
        e.g. one job of a Slurm array each; the manifests of the parts merge.
    force
        Redo cases that are up to date.
    check_intensities
        Fail a case whose CT is not in Hounsfield units or whose PET is not in SUV or
        Bq/ml (e.g. swapped files; see :func:`~hecktorseg.preprocessing.check_intensities`).
    allow_missing_labels
        In a dataset where most cases have a label map, preprocess the cases without
        one as unlabelled; by default each of them fails (see :func:`missing_labels`).
    progress
        ``callback(completed, total, message)`` after each case.

    Returns
    -------
    BatchReport
        Done, skipped and failed cases.

    Raises
    ------
    LayoutError, DataError
        The input folder cannot be read as a dataset.
    ConfigError
        Bad ``workers``/``num_parts``/``part_id``, duplicate patient ids, or grid sides
        that are not multiples of 16 (see :func:`check_trainable_size`).
    OutputError
        ``output_dir`` cannot be created or written, or another run is writing
        into it (a lock file ``OUT/.hecktorseg-preprocess.lock``; separate parts
        of one ``num_parts`` split may run together).
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    all_cases = _resolve_cases(input_dir_or_cases, layout, bbox_table)
    cfg = config or default_preprocess_config(all_cases[0].layout if all_cases else layout)
    check_trainable_size(cfg)
    ids = [c.patient_id for c in all_cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"duplicate patient ids: {', '.join(dupes)}", hint="each case needs its own id")
    cases = select_part(all_cases, num_parts, part_id)
    unlabelled = {} if allow_missing_labels else missing_labels(all_cases)
    out = ensure_output_dir(Path(output_dir).absolute())
    with contextlib.ExitStack() as locks:
        # One run per folder (per part with num_parts > 1); parts of one split share it.
        locks.enter_context(output_lock(out, LOCK_NAME, shared=num_parts > 1, what="preprocess run"))
        if num_parts > 1:
            locks.enter_context(
                output_lock(
                    out,
                    f".hecktorseg-preprocess-part{part_id}of{num_parts}.lock",
                    what=f"preprocess run of part {part_id} of {num_parts}",
                )
            )
        return _preprocess_locked(
            cases, out, cfg, workers, num_parts, force, progress, check_intensities, unlabelled
        )


LOCK_NAME = ".hecktorseg-preprocess.lock"
"""Lock file in the output folder: a run holds it while it writes (shared between parts)."""


def _preprocess_locked(
    cases: list[Case],
    out: Path,
    cfg: PreprocessConfig,
    workers: int,
    num_parts: int,
    force: bool,
    progress: ProgressCallback | None,
    check_intensities: bool,
    unlabelled: Mapping[str, str],
) -> BatchReport:
    if num_parts == 1:  # no other part can be writing the index right now
        for stray in out.glob(f".{MANIFEST_NAME}.*"):
            if is_stale_temp(stray):
                with contextlib.suppress(FileNotFoundError):
                    stray.unlink()
    total = len(cases)
    outcomes: list[_Outcome] = []

    def note(outcome: _Outcome) -> None:
        outcomes.append(outcome)
        if outcome.status == "failed":
            logger.warning("%s failed: %s", outcome.patient_id, outcome.reason)
        if outcome.outside:
            lost = ", ".join(
                f"label {v}: {n} of {outcome.totals.get(v, n)}" for v, n in outcome.outside.items()
            )
            logger.warning(
                "%s: label voxels outside the box (%s); a larger box (size / box_size_mm) keeps them",
                outcome.patient_id,
                lost,
            )
        if progress is not None:
            progress(len(outcomes), total, f"{outcome.patient_id} {outcome.status}")

    if progress is not None:
        progress(0, total, "")
    for case in [c for c in cases if c.patient_id in unlabelled]:
        note(_Outcome(case.patient_id, "failed", unlabelled[case.patient_id]))
    cases_to_run = [c for c in cases if c.patient_id not in unlabelled]
    if workers == 1 or len(cases_to_run) <= 1:
        for case in cases_to_run:
            note(_run_case(case, cfg, str(out), force, check_intensities))
    else:
        pool = _worker_pool(min(workers, len(cases_to_run)))
        try:
            futures = {
                pool.submit(_run_case, case, cfg, str(out), force, check_intensities): case
                for case in cases_to_run
            }
            for future in cf.as_completed(futures):
                case = futures[future]
                try:
                    note(future.result())
                except Exception as exc:  # e.g. BrokenProcessPool: a worker was killed
                    reason = f"worker process failed ({type(exc).__name__}: {exc})"
                    note(_Outcome(case.patient_id, "failed", reason))
        except BaseException:  # Ctrl-C: do not start the cases still waiting
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    manifest_path: Path | None = None
    warnings: list[str] = []
    try:
        merge_manifests(out)
        manifest_path = out / MANIFEST_NAME
    except DataError:
        manifest_path = None  # no case complete yet
    except ConfigError as exc:
        warnings.append(f"manifest not written: {exc}")
        logger.warning("manifest not written: %s", exc)
    order = {c.patient_id: i for i, c in enumerate(cases)}
    outcomes.sort(key=lambda o: order[o.patient_id])
    return BatchReport(
        output_dir=out,
        manifest_path=manifest_path,
        done=tuple(o.patient_id for o in outcomes if o.status == "done"),
        skipped=tuple(o.patient_id for o in outcomes if o.status == "skipped"),
        failed={o.patient_id: o.reason for o in outcomes if o.status == "failed"},
        warnings=tuple(warnings),
        outside_box={o.patient_id: o.outside for o in outcomes if o.outside},
    )
