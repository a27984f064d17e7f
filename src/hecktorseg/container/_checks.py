"""Checks of ``container build``'s arguments before anything is written or deleted.

* the image tag goes into a shell script (``run_sample.sh``), so it must follow Docker's
  reference grammar (``[HOST[:PORT]/]PATH[:TAG]``), which leaves no room for shell syntax;
* the build context folder is replaced on ``force=True``, so it must not be the current
  folder, one above it, or a folder holding one of the inputs;
* the challenge's output holds labels 0, 1 and 2 only, so a model with more than 3 outputs
  (which writes labels above 2) is refused by ``container build`` and ``container predict``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from hecktorseg.errors import ConfigError

__all__: list[str] = []

logger = logging.getLogger(__name__)

# Docker's reference grammar (github.com/distribution/reference, "reference.go"), without a digest:
# docker build --tag takes NAME[:TAG].
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*(?::{_TAG})?")
_MAX_NAME = 255  # characters of the name (without the tag)


def check_image_tag(image: str) -> str:
    """Return ``image`` if it is a valid Docker image reference ``NAME[:TAG]``; raise otherwise.

    Raises
    ------
    ConfigError
        Anything outside the grammar (spaces, ``$``, quotes, capitals in the path, ...).
    """
    name = image.rpartition(":")[0] if ":" in image.rpartition("/")[2] else image
    if not _REFERENCE.fullmatch(image) or len(name) > _MAX_NAME:
        raise ConfigError(
            f"not a valid Docker image name {image!r}",
            hint="pass image= as NAME[:TAG] with lower-case letters, digits and . _ - / in NAME "
            "(e.g. image='hecktorseg-gc:1.0' or 'registry:5000/team/seg:v2')",
        )
    return image


def check_context_folder(out: Path, inputs: Sequence[Path]) -> None:
    """Refuse a build context folder whose replacement would delete the caller's files.

    Raises
    ------
    ConfigError
        ``out`` is ``.``/``..``, the current folder or one above it, or it holds (or is)
        one of ``inputs`` (checkpoints, wheel).
    """
    target = out.resolve()
    cwd = Path.cwd().resolve()
    if out.name in ("", ".", "..") or target == cwd or target in cwd.parents:
        raise ConfigError(
            "the build context folder is the current folder or holds it",
            path=out,
            hint="give a new folder for the build context, e.g. out_dir='gc-image'",
        )
    for source in inputs:
        resolved = source.resolve()
        if resolved == target or target in resolved.parents:
            raise ConfigError(
                f"the build context folder holds the input {source}",
                path=out,
                hint="give a new folder for the build context, outside the inputs' folders",
            )


def check_challenge_outputs(n_outputs: Iterable[int]) -> None:
    """Refuse models writing labels above 2; warn about models without GTVn (1 or 2 outputs).

    ``n_outputs`` holds each model's output channels (``Predictor.n_outputs``).

    Raises
    ------
    ConfigError
        A model with more than 3 output channels.
    """
    n_out = sorted({int(n) for n in n_outputs if n})
    too_many = [n for n in n_out if n > 3]
    if too_many:
        raise ConfigError(
            f"a model has {too_many[0]} output channels: it would write labels up to {too_many[0] - 1}, "
            "but the challenge's output holds 0 (background), 1 (GTVp) and 2 (GTVn) only",
            hint="use models trained with n_classes=3 (GTVp + GTVn) or n_classes=1",
        )
    if n_out and max(n_out) < 3:
        logger.warning("binary model(s): the image writes labels 0/1 only (no GTVn)")
