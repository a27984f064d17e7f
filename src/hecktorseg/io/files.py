"""Safe handling of input and output paths.

* :func:`check_input_file` looks at a file's type with :func:`os.stat` (after
  resolving links) *before* anything opens or hashes it: a FIFO, a device such
  as ``/dev/zero`` or a socket would block or never end.
* :func:`ensure_output_dir` creates an output folder or says in one line why it
  cannot (a file of that name, no permission, a read-only or virtual file system).
* :func:`output_lock` holds an advisory lock on an output folder so that two runs
  writing the same files into it refuse to race (POSIX; elsewhere a no-op).
* :func:`is_stale_temp` tells whether a temporary file left by
  :func:`hecktorseg.io.atomic_path` belongs to a process that no longer runs, so
  that cleaning up never deletes the temporary file of a run still writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from hecktorseg.errors import DataError, OutputError
from hecktorseg.typing import PathLike

__all__ = [
    "check_input_dir",
    "check_input_file",
    "ensure_output_dir",
    "is_stale_temp",
    "output_file_error",
    "output_lock",
]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_input_file(path: PathLike, *, what: str = "file", allow_dir: bool = False) -> os.stat_result:
    """Check, without opening it, that ``path`` is an existing regular file (or a folder if allowed).

    Parameters
    ----------
    path
        The file; a symbolic link is followed.
    what
        What the file is, for the message (``"CT image"``, ``"checkpoint"``, …).
    allow_dir
        Accept a folder too (e.g. a DICOM series).

    Returns
    -------
    os.stat_result
        The file's status (size, type), read once.

    Raises
    ------
    DataError
        The file is missing, cannot be accessed, is a folder (unless allowed), or is
        a FIFO, device or socket, which would block or never end when read.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _missing(p, what, "file", "check the path") from None
    except OSError as exc:
        raise DataError(
            f"cannot access {what} ({exc.strerror or exc})", path=p, hint="check the path and its permissions"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        if allow_dir:
            return st
        raise DataError(f"{what} is a folder, not a file", path=p, hint="point to the file itself")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise DataError(
            f"{what} is {kind}, not a regular file",
            path=p,
            hint="hecktorseg reads only regular files; copy the data into a file first",
        )
    return st


def _missing(p: Path, what: str, kind: str, hint: str) -> DataError:
    """The error for a path that ``stat`` did not find: a broken symbolic link, named as such, or nothing."""
    if not p.is_symlink():
        return DataError(f"{what} not found", path=p, hint=hint)
    try:
        target = str(p.parent / p.readlink())
    except OSError:
        target = "(unreadable)"
    return DataError(
        f"{what} is a broken symbolic link: its target {target} does not exist",
        path=p,
        hint=f"point the link at the {kind}, or remove it",
    )


def check_input_dir(path: PathLike, *, what: str = "folder", hint: str = "check the path") -> Path:
    """Check that ``path`` is an existing folder; if not, say what it is instead.

    Parameters
    ----------
    path
        The folder; a symbolic link is followed.
    what
        What the folder is, for the message (``"input folder"``, …).
    hint
        How to fix a missing folder.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DataError
        Nothing of that name ("not found", or a broken symbolic link), or a file,
        FIFO, device or socket of that name ("… is a FIFO (named pipe), not a folder").
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _missing(p, what, "folder", hint) from None
    except OSError as exc:
        raise DataError(
            f"cannot access {what} ({exc.strerror or exc})", path=p, hint="check the path and its permissions"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "a file")
        raise DataError(f"{what} is {kind}, not a folder", path=p, hint="give the folder itself")
    return p


def _first_file_above(p: Path) -> Path | None:
    """The closest existing non-folder among ``p`` and its parents (why mkdir said ENOTDIR)."""
    for candidate in (p, *p.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def ensure_output_dir(path: PathLike, *, what: str = "output folder") -> Path:
    """Create ``path`` (with its parents) if needed and check that it is a writable folder.

    Raises
    ------
    OutputError
        ``path`` or one of its parents is a file, the folder cannot be created
        (permission denied, read-only or virtual file system such as ``/proc``) or
        is not writable. The message names the path and says how to fix it.
    """
    p = Path(path)
    fix = "choose another folder, or remove or rename what is in the way"
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = _first_file_above(p) or p
        raise OutputError(
            f"cannot create the {what}: {blocker} is a file, not a folder", path=p, hint=fix
        ) from None
    except PermissionError:
        raise OutputError(
            f"cannot create the {what} (permission denied)", path=p, hint="choose a folder you can write to"
        ) from None
    except OSError as exc:
        raise OutputError(
            f"cannot create the {what} ({exc.strerror or exc})",
            path=p,
            hint="choose a folder on a writable file system",
        ) from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"the {what} is not writable", path=p, hint="choose a folder you can write to")
    return p


def output_file_error(exc: OSError, path: PathLike, what: str = "output file") -> OutputError:
    """Turn an :class:`OSError` raised while writing ``path`` into a one-line :class:`OutputError`."""
    p = Path(path)
    if isinstance(exc, IsADirectoryError) or p.is_dir():
        return OutputError(
            f"cannot write the {what}: a folder of that name exists", path=p, hint="remove or rename it"
        )
    if isinstance(exc, PermissionError):
        return OutputError(
            f"cannot write the {what} (permission denied)", path=p, hint="choose a folder you can write to"
        )
    if exc.errno == errno.ENOSPC:
        return OutputError(
            f"cannot write the {what}: no space left on the device", path=p, hint="free some space"
        )
    return OutputError(
        f"cannot write the {what} ({exc.strerror or exc})", path=p, hint="choose a writable output location"
    )


_TEMP_PID = re.compile(r"\.(\d+)-[^.]*\.tmp")


def is_stale_temp(path: PathLike) -> bool:
    """Whether a temporary file of :func:`~hecktorseg.io.atomic_path` was left by a finished process.

    The temporary names hold the writing process's id. A file whose process
    still runs on this machine (or this very process) is *not* stale; one
    without a process id (older versions) or whose process is gone is.
    """
    match = _TEMP_PID.search(Path(path).name)
    if match is None:
        return True
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


@contextlib.contextmanager
def output_lock(folder: PathLike, name: str, *, shared: bool = False, what: str = "run") -> Iterator[Path]:
    """Hold an advisory lock ``folder/name`` for the duration of the block.

    Parameters
    ----------
    folder
        The output folder (created if needed).
    name
        Lock file name, e.g. ``".hecktorseg-preprocess.lock"``.
    shared
        Take a shared lock: any number of shared holders, but no exclusive one.
    what
        What is running, for the message.

    Raises
    ------
    OutputError
        Another process holds a conflicting lock: "another … is writing here".
    """
    out = ensure_output_dir(folder)
    lock = out / name
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, no protection
        yield lock
        return
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise output_file_error(exc, lock, "lock file") from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            except OSError:
                owner = ""
            who = f" (process {owner})" if owner.isdigit() else ""
            raise OutputError(
                f"another {what} is writing here{who}",
                path=out,
                hint="wait for it to finish or write to another folder",
            ) from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock
        if not shared:
            os.ftruncate(fd, 0)  # no stale process id for the next run's message
    finally:
        os.close(fd)  # releases the lock
