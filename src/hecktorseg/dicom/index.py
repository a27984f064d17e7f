"""Indexing a folder tree of DICOM files by their headers only: patients, studies, series.

Any depth, any file names (PACS exports often use bare numbers without a suffix). A file is
read as DICOM when it carries the ``DICM`` marker after its 128-byte preamble; everything else
is skipped and counted. Only the header elements listed in :data:`INDEX_TAGS` are parsed, so
indexing stays fast (see ``benchmarks/bench_dicom.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pydicom
from pydicom.errors import InvalidDicomError

from hecktorseg.errors import DataError
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["INDEX_TAGS", "DicomIndex", "FileEntry", "SeriesEntry", "index_dicom"]

logger = logging.getLogger(__name__)

INDEX_TAGS: tuple[str, ...] = (
    "SOPClassUID",
    "SOPInstanceUID",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "ImageType",
    "CorrectedImage",
    "InstanceNumber",
    "NumberOfFrames",
)
"""The header elements read when indexing."""


@contextlib.contextmanager
def lenient_reading() -> Iterator[None]:
    """Read without pydicom's per-value validation (a third of the indexing time; values are checked where used)."""
    settings = pydicom.config.settings
    before = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        yield
    finally:
        settings.reading_validation_mode = before


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _values(ds: pydicom.Dataset, keyword: str) -> tuple[str, ...]:
    value = ds.get(keyword)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split("\\") if v.strip())
    try:
        return tuple(str(v).strip() for v in value)
    except TypeError:
        return (str(value).strip(),)


@attrs.frozen
class FileEntry:
    """The indexed header of one DICOM file.

    Attributes
    ----------
    path
        The file.
    patient_id, study_uid, series_uid, frame_of_reference_uid, sop_class_uid, sop_instance_uid
        Identifiers from the header (empty when absent).
    modality
        ``CT``, ``PT``, ``RTSTRUCT``, ``SEG``, …
    description
        SeriesDescription.
    image_type, corrected
        The values of ImageType and CorrectedImage.
    instance_number
        InstanceNumber (0 when absent).
    frames
        NumberOfFrames (1 for single-frame images).
    """

    path: Path
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    description: str
    image_type: tuple[str, ...]
    corrected: tuple[str, ...]
    instance_number: int
    frames: int


@attrs.frozen
class SeriesEntry:
    """One series of one patient.

    Attributes
    ----------
    uid
        SeriesInstanceUID.
    files
        Its files, sorted by path.
    """

    uid: str
    files: tuple[FileEntry, ...]

    @property
    def first(self) -> FileEntry:
        """The first file (for the series-level header values)."""
        return self.files[0]

    @property
    def modality(self) -> str:
        """The series' modality."""
        return self.first.modality

    @property
    def study_uid(self) -> str:
        """StudyInstanceUID."""
        return self.first.study_uid

    @property
    def description(self) -> str:
        """SeriesDescription."""
        return self.first.description

    def summary(self) -> str:
        """``UID 'description' (N files)``, as listed in errors about ambiguous series."""
        return f"{self.uid} {self.description!r} ({len(self.files)} file(s), {self.modality})"


@attrs.frozen
class DicomIndex:
    """What :func:`index_dicom` found under a folder.

    Attributes
    ----------
    root
        The folder.
    series
        Per patient id, that patient's series (any study), sorted by UID.
    skipped
        Files that are not DICOM (no ``DICM`` marker) or could not be parsed.
    unreadable
        Per DICOM file that could not be parsed, the reason.
    """

    root: Path
    series: dict[str, tuple[SeriesEntry, ...]]
    skipped: int = 0
    unreadable: dict[str, str] = attrs.field(factory=dict)

    @property
    def patients(self) -> tuple[str, ...]:
        """The patient ids, sorted."""
        return tuple(sorted(self.series))

    @property
    def n_files(self) -> int:
        """Number of DICOM files indexed."""
        return sum(len(s.files) for group in self.series.values() for s in group)


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def is_dicom_file(path: PathLike) -> bool:
    """Whether ``path`` starts with a DICOM preamble and the ``DICM`` marker."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def read_entry(path: Path) -> FileEntry:
    """Index one DICOM file (header only).

    Raises
    ------
    DataError
        The file cannot be parsed as DICOM.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(INDEX_TAGS))
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
        raise DataError(f"unreadable DICOM file ({type(exc).__name__}: {exc})", path=path) from None
    try:
        number = int(ds.get("InstanceNumber") or 0)
    except (TypeError, ValueError):
        number = 0
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        frames = 1
    return FileEntry(
        path=path,
        patient_id=_text(ds, "PatientID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        modality=_text(ds, "Modality").upper(),
        description=_text(ds, "SeriesDescription"),
        image_type=tuple(v.upper() for v in _values(ds, "ImageType")),
        corrected=tuple(v.upper() for v in _values(ds, "CorrectedImage")),
        instance_number=number,
        frames=frames,
    )


def group_entries(entries: Sequence[FileEntry]) -> dict[str, tuple[SeriesEntry, ...]]:
    """Group file entries by patient id and series UID."""
    by_series: dict[tuple[str, str], list[FileEntry]] = {}
    for entry in entries:
        by_series.setdefault((entry.patient_id, entry.series_uid), []).append(entry)
    out: dict[str, list[SeriesEntry]] = {}
    for (pid, uid), files in sorted(by_series.items()):
        out.setdefault(pid, []).append(SeriesEntry(uid, tuple(sorted(files, key=lambda f: str(f.path)))))
    return {pid: tuple(series) for pid, series in out.items()}


def index_dicom(root: PathLike, *, progress: ProgressCallback | None = None) -> DicomIndex:
    """Index every DICOM file under ``root`` (headers only).

    Parameters
    ----------
    root
        A folder (searched to any depth; hidden files and folders are ignored) or one file.
    progress
        ``callback(completed, total, message)`` every 500 files.

    Returns
    -------
    DicomIndex
        The series per patient, and how many files were skipped.

    Raises
    ------
    DataError
        ``root`` does not exist, or holds no DICOM file.
    """
    base = Path(root)
    if not base.exists():
        raise DataError("no such file or folder", path=base, hint="give the folder of the DICOM export")
    paths = [base] if base.is_file() else list(_walk(base))
    entries: list[FileEntry] = []
    skipped = 0
    unreadable: dict[str, str] = {}
    with lenient_reading():
        for done, path in enumerate(paths, start=1):
            if progress is not None and done % 500 == 0:
                progress(done, len(paths), "indexing")
            if not is_dicom_file(path):
                skipped += 1
                continue
            try:
                entries.append(read_entry(path))
            except DataError as exc:
                skipped += 1
                unreadable[str(path)] = exc.message
                logger.warning("%s", exc)
    if progress is not None:
        progress(len(paths), len(paths), "indexed")
    if not entries:
        raise DataError(
            f"no DICOM file found ({skipped} other file(s))",
            path=base,
            hint="DICOM files start with a 128-byte preamble and 'DICM'; give the folder of the export",
        )
    logger.info("indexed %d DICOM file(s) under %s (%d other file(s) skipped)", len(entries), base, skipped)
    return DicomIndex(root=base, series=group_entries(entries), skipped=skipped, unreadable=unreadable)
