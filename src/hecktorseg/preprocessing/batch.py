"""Preprocessing a whole dataset: parallel, resumable, split into parts for clusters."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import attrs
import SimpleITK as sitk

from hecktorseg._version import __version__
from hecktorseg.config import to_dict
from hecktorseg.errors import ConfigError, DataError, HecktorsegError
from hecktorseg.io import (
    IMAGE_SUFFIXES,
    Case,
    Layout,
    check_image_file,
    ensure_output_dir,
    layout_paths,
    write_image,
)
from hecktorseg.io._reading import set_io_threads
from hecktorseg.io.files import check_input_file, is_stale_temp, output_lock
from hecktorseg.io.layout_specs import split_image_suffix
from hecktorseg.preprocessing.case import preprocess_case
from hecktorseg.preprocessing.config import PreprocessConfig, default_preprocess_config
from hecktorseg.preprocessing.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    SourceFile,
    _now,
    merge_manifests,
    record_path,
    sha256_file,
    write_record,
)
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

GRID_MULTIPLE = 16
"""Every side of a preprocessed grid must be a multiple of this: the U-Nets halve it four times."""

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


def _sources(case: Case) -> dict[str, SourceFile]:
    roles = {"ct": case.ct_path, "pet": case.pet_path}
    if case.label_path is not None:
        roles["label"] = case.label_path
    out = {}
    for role, path in roles.items():
        p = Path(path)
        if not p.exists() and not p.is_symlink():
            raise DataError(
                f"patient {case.patient_id}: {role} file not found",
                path=p,
                hint="check the dataset folder; the other cases are processed anyway",
            )
        check_input_file(p, what=f"patient {case.patient_id}: {role} file", allow_dir=True)
        try:
            out[role] = SourceFile(p.absolute(), sha256_file(p))
        except OSError as exc:
            raise DataError(f"patient {case.patient_id}: cannot read {role} file ({exc})", path=p) from None
    return out


def _up_to_date(case: Case, sources: dict[str, SourceFile], config: PreprocessConfig, out: Path) -> bool:
    rec = record_path(out, case.patient_id)
    if not rec.is_file():
        return False
    try:
        data = json.loads(rec.read_text(encoding="utf-8"))
        entry = ManifestEntry.from_dict(data, out, where=str(rec))
    except (HecktorsegError, OSError, ValueError):
        return False
    if to_dict(entry.config) != to_dict(config):
        return False
    if {r: s.sha256 for r, s in entry.sources.items()} != {r: s.sha256 for r, s in sources.items()}:
        return False
    if entry.centre != case.centre or entry.clinical != case.clinical:  # the clinical table changed
        return False
    table_box = case.bbox if config.box_source in ("auto", "table") else None
    if table_box is not None and (entry.box_source != "table" or entry.bbox != table_box):
        return False
    if table_box is None and entry.box_source == "table":
        return False
    if not entry.outputs_exist():
        return False
    for path in (entry.ct_path, entry.pet_path, entry.label_path):
        if path is None:
            continue
        try:
            check_image_file(path)  # header + size: a truncated or replaced output is redone
        except HecktorsegError as exc:
            logger.info("earlier output is not valid, redoing %s: %s", case.patient_id, exc)
            return False
    return True


def _clean_case_dir(folder: Path, patient_id: str) -> None:
    """Remove the record, outputs and stray temporary files of a case about to be (re)made."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        stray_tmp = p.name.startswith(".") and ".tmp" in p.name and is_stale_temp(p)
        ours = p.name.startswith(f"{patient_id}_") and (p.name.endswith((".nii.gz", ".nii", ".json")))
        if p.is_file() and (stray_tmp or ours):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def check_trainable_size(config: PreprocessConfig) -> None:
    """Refuse a reference grid whose sides are not multiples of :data:`GRID_MULTIPLE`.

    The networks pool four times, so a preprocessed dataset with other sides cannot be
    trained on (inference pads in-memory grids itself and needs no such rule).

    Raises
    ------
    ConfigError
        A side of ``config.size`` is not a multiple of 16.
    """
    size = [int(v) for v in config.size]
    if any(v % GRID_MULTIPLE for v in size):
        nearest = [max(GRID_MULTIPLE, round(v / GRID_MULTIPLE) * GRID_MULTIPLE) for v in size]
        raise ConfigError(
            f"size: every side must be a multiple of {GRID_MULTIPLE} (the network halves it four times), "
            f"got {size}",
            hint=f"use e.g. size=({', '.join(str(v) for v in nearest)})",
        )


def _expected_label(case: Case) -> Path:
    """Where the case's layout expects its label map (for messages)."""
    ct = Path(case.ct_path)
    split = split_image_suffix(ct.name)
    suffix = split[1] if split is not None else IMAGE_SUFFIXES[0]
    if case.layout is None:
        return ct.parent
    root = ct.parent if case.layout is Layout.HECKTOR2021 else ct.parent.parent
    try:
        return layout_paths(root, case.patient_id, case.layout, suffix=suffix)[2]
    except HecktorsegError:
        return ct.parent


def missing_labels(cases: Sequence[Case]) -> dict[str, str]:
    """Reasons for the cases that lack a label map in a dataset where most cases have one.

    A labelled dataset (more than half of its cases have a label map) with a few
    cases without one usually means a missing or misnamed file; training would
    silently lose those patients. A dataset without labels (a test set) gives ``{}``.
    Only cases found in a dataset folder (with a ``layout``) count: a case built by
    hand without a label is taken as meant.
    """
    cases = [c for c in cases if c.layout is not None]
    unlabelled = [c for c in cases if c.label_path is None]
    n_labelled = len(cases) - len(unlabelled)
    if not unlabelled or n_labelled * 2 <= len(cases):
        return {}
    reasons = {}
    for case in unlabelled:
        error = DataError(
            f"patient {case.patient_id}: label map not found, although {n_labelled} of the "
            f"{len(cases)} patients have one",
            path=_expected_label(case),
            hint="add or rename the mask, or pass allow_missing_labels=True "
            "to preprocess this patient without one",
        )
        reasons[case.patient_id] = str(error)
    return reasons


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


def _init_worker(parent: int | None = None) -> None:
    """Worker processes do the parallelism: one SimpleITK thread and sequential reads in each.

    A worker also dies with its parent (see :func:`_tie_to_parent`), so that a
    ``kill -9`` of the main process leaves no orphans behind.
    """
    if parent is not None:
        _tie_to_parent(parent)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    set_io_threads(1)


_PR_SET_PDEATHSIG = 1


def _tie_to_parent(parent: int) -> None:
    """End this process when process ``parent`` ends, however it ends.

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread also checks once a second whether the parent is
    still there (its id as parent process).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above: go now
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="hecktorseg-parent-watch", daemon=True).start()


def _worker_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes that exit when this process dies (even by SIGKILL)."""
    ctx = multiprocessing.get_context("spawn")  # safe with threads (torch, ITK) in the parent
    return cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
    )


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
