"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hecktorseg.io.files import ensure_output_dir, output_file_error
from hecktorseg.typing import PathLike

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` and move it onto ``path`` on success.

    The temporary file lives in the destination folder (so the final
    :func:`os.replace` is atomic on POSIX and Windows) and keeps the
    destination's suffixes, so writers that pick a format from the file name
    (SimpleITK, matplotlib, torch) still work. If the block raises, the
    temporary file is removed and ``path`` is untouched. The temporary name
    holds the process id and a random part (``.NAME.<pid>-<random>.tmp…``), so
    concurrent processes never share one and a cleanup can tell a stale one
    (:func:`hecktorseg.io.files.is_stale_temp`).

    Parameters
    ----------
    path
        Final destination.
    suffix
        Suffix of the temporary file; defaults to all suffixes of ``path``
        (``.nii.gz`` stays ``.nii.gz``).

    Raises
    ------
    OutputError
        The folder cannot be created or written, or ``path`` is a folder.
    """
    dest = Path(path)
    ensure_output_dir(dest.parent)
    if dest.is_dir():
        raise output_file_error(IsADirectoryError(), dest)
    if suffix is None:
        suffix = "".join(dest.suffixes)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest.name}.{os.getpid()}-", suffix=f".tmp{suffix}", dir=dest.parent
        )
    except OSError as exc:
        raise output_file_error(exc, dest) from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            raise output_file_error(exc, dest) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync before the rename)."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))
