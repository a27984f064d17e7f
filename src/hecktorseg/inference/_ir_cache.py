"""Converted OpenVINO models on disk: written whole, readable by other users, checked when read.

Each converted stage is a folder ``<cache>/openvino/<version>/<key>/<stage>/`` holding
``model.xml``, ``model.bin`` and :data:`DIGEST_NAME`, the SHA-256 of both written with them.
A folder is written under a temporary name and moved into place, so a reader never sees
half of it. Its permissions follow the user's umask (not the 0700 of a private temporary
folder), so a cache prepared by one user (e.g. while a container image is built) serves
another. A reader checks the digests: a damaged or altered file, or a folder without
digests, is reported and converted again, so the bytes in the cache cannot silently change
the predictions. (The digests detect damage and stray edits; whoever can write the cache
can also rewrite them, so the cache folder must not be writable by untrusted users.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__: list[str] = []

logger = logging.getLogger(__name__)

DIGEST_NAME = "sha256.json"
"""File beside a converted model with the SHA-256 of each of its files."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_dir_atomically(final: Path, write: Callable[[Path], None], *, replace: bool = False) -> None:
    """``write(tmp_dir)``, then move ``tmp_dir`` onto ``final``.

    Without ``replace`` an existing ``final`` (a parallel process won the race) is kept;
    with it, ``final`` (e.g. a damaged cache entry) is replaced.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()  # mode from the umask, unlike tempfile.mkdtemp's 0700
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:12]}"
    try:
        write(tmp)
        if replace:
            with contextlib.suppress(FileNotFoundError):
                final.rename(old)
        try:
            os.replace(tmp, final)
        except OSError:  # ``final`` appeared meanwhile (a parallel process): keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def cache_ir(ov: Any, ov_model: Any, ir: Path, *, replace: bool = False) -> None:
    """Save ``ov_model`` as ``ir`` with the digests of its files (a failure only loses the caching)."""

    def write(tmp: Path) -> None:
        ov.save_model(ov_model, str(tmp / ir.name), compress_to_fp16=False)
        digests = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / DIGEST_NAME).write_text(json.dumps(digests, indent=1) + "\n", encoding="utf-8")

    try:
        write_dir_atomically(ir.parent, write, replace=replace)
        logger.info("OpenVINO: converted model cached in %s", ir.parent)
    except OSError as exc:
        logger.warning("OpenVINO: could not cache the converted model in %s (%s)", ir.parent, exc)


def read_cached_ir(core: Any, ir: Path) -> tuple[Any, bool]:
    """``(model, stale)``: the cached model if its files match their digests, else ``(None, stale)``.

    ``stale`` says that a cache entry exists but cannot be used (damaged, altered, without
    digests, unreadable); the caller converts again and replaces it.
    """
    folder = ir.parent
    try:
        if not ir.exists():
            return None, False
        recorded = json.loads((folder / DIGEST_NAME).read_text(encoding="utf-8"))
        files = {p.name for p in folder.iterdir() if p.is_file() and p.name != DIGEST_NAME}
        if not isinstance(recorded, dict) or set(recorded) != files or ir.name not in files:
            raise ValueError("the files differ from those recorded")
        for name, expected in recorded.items():
            if _sha256(folder / name) != expected:
                raise ValueError(f"{name} does not match its SHA-256")
        return core.read_model(str(ir)), False
    except FileNotFoundError:
        reason = f"no {DIGEST_NAME}"
    except PermissionError as exc:
        reason = f"not readable: {exc.strerror}"
    except (OSError, ValueError, RuntimeError) as exc:  # json, digests, OpenVINO's reader
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    logger.warning("OpenVINO: cannot use the cached model in %s (%s): converting it again", folder, reason)
    return None, True


def writable_folder(folder: Path) -> bool:
    """Whether ``folder`` exists or can be created, and can be written to."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)
