"""Shared pieces of the command-line layer: error display, progress bars, config flags."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
import time
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, Literal, Optional, TypeVar, Union, get_args, get_origin

import attrs
import typer
import yaml
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hecktorseg.config import config_fields, help_text
from hecktorseg.errors import HecktorsegError

__all__ = [
    "FLAG_EXCEPTIONS",
    "console",
    "err_console",
    "error_line",
    "flag_hint",
    "handle_errors",
    "progress_bar",
    "reason_line",
    "setup_logging",
    "with_config_options",
]

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_PANEL = "Configuration fields (override the YAML)"
_PREFIX = "cfg__"


def setup_logging(verbose: int = 0) -> None:
    """Route library logging to a rich handler on stderr (INFO by default, DEBUG with -v)."""
    level = logging.DEBUG if verbose > 0 else logging.INFO
    root = logging.getLogger("hecktorseg")
    root.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
        handler.setLevel(level)
        root.addHandler(handler)
        root.propagate = False


FLAG_EXCEPTIONS: dict[str, str] = {
    "bbox_table": "--bbox",
    "check_intensities=False": "--allow-implausible-intensities",
    "num_threads": "--threads",
    "variant_name": "--variant",
}
"""Library parameter (or ``parameter=value``) → command-line flag, where the flag is not simply
``--parameter-name`` (``--no-parameter-name`` for ``=False``)."""

_PARAMETER = re.compile(r"(?<![\w.-])([a-z][a-z0-9_]*)=(True|False|\([^)]*\)|\"[^\"]*\"|'[^']*'|[^\s,;)]+)?")


def flag_hint(text: str) -> str:
    """Turn the library's ``parameter=value`` references into the command line's flags.

    Library errors name function parameters and configuration fields (``force=True``,
    ``size=(144, 144, 160)``, ``bbox_table=``); on the command line the same advice reads
    ``--force``, ``--size 144,144,160``, ``--bbox``. The rule is ``name=value`` →
    ``--name-with-dashes value``, ``=True`` → the bare flag, ``=False`` → ``--no-…``, with the
    exceptions of :data:`FLAG_EXCEPTIONS`. Text without ``=`` is returned unchanged.
    """

    def replace(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        special = FLAG_EXCEPTIONS.get(f"{name}={value}")
        if special is not None:
            return special
        flag = FLAG_EXCEPTIONS.get(name, "--" + name.replace("_", "-"))
        if value is None or value == "True":
            return flag
        if value == "False":
            return "--no-" + flag[2:]
        if value[0] in "\"'":
            value = value[1:-1]
        elif value.startswith("("):
            value = ",".join(v.strip() for v in value[1:-1].split(",") if v.strip())
        return f"{flag} {value}"

    return _PARAMETER.sub(replace, text)


def error_line(exc: HecktorsegError) -> str:
    """The one line the command line shows for ``exc``: its text with the hint in flags (:func:`flag_hint`)."""
    text = str(exc)
    if exc.hint and text.endswith(exc.hint):
        text = text[: len(text) - len(exc.hint)] + flag_hint(exc.hint)
    return text


def reason_line(reason: str) -> str:
    """A per-case failure reason (``message — hint``) with the hint part in flags."""
    head, sep, hint = reason.rpartition(" — ")
    return f"{head}{sep}{flag_hint(hint)}" if sep else reason


def handle_errors(func: F) -> F:
    """Show :class:`~hecktorseg.errors.HecktorsegError` as one red line and exit 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HecktorsegError as exc:
            # the message is plain text: "[nan, nan]" must not be taken for rich markup
            err_console.print(
                f"[bold red]error:[/] {escape(error_line(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(code=130) from None
        except OSError as exc:  # a file system problem the library did not anticipate: still one line
            err_console.print(f"[bold red]error:[/] {_os_error_line(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
        except MemoryError:
            err_console.print(
                "[bold red]error:[/] out of memory — use smaller inputs or a machine with more memory "
                "(run with -v for details)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=1) from None

    return typing.cast(F, wrapper)


def _os_error_line(exc: OSError) -> str:
    """One line for an :class:`OSError`: the path, what the system said and how to fix it."""
    where = exc.filename if exc.filename is not None else "(unknown path)"
    reason = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        hint = "check that the path is a folder/file as expected and that you may write there"
    elif isinstance(exc, FileNotFoundError):
        hint = "check the path"
    else:
        hint = "check the path, the free space and the permissions"
    return f"{where}: {reason} — {hint}"


@contextlib.contextmanager
def progress_bar(description: str, *, disable: bool = False) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar, yielded as a :data:`~hecktorseg.typing.ProgressCallback`.

    When stderr is not a terminal (a log file, a batch job, a pipe) a bar would print nothing
    until the end, so plain lines are printed instead: the first step, the last, and the steps
    in between at most every :data:`PLAIN_PROGRESS_SECONDS`.
    """
    if not disable and not err_console.is_terminal:
        yield _plain_progress(description)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[message]}"),
        console=err_console,
        disable=disable,
        transient=False,
    )
    task = progress.add_task(description, total=None, message="")

    def update(completed: int, total: int, message: str = "") -> None:
        progress.update(task, completed=completed, total=total, message=message)

    with progress:
        yield update


PLAIN_PROGRESS_SECONDS = 10.0
"""Least interval between two progress lines when stderr is not a terminal."""


def _plain_progress(description: str) -> Callable[[int, int, str], None]:
    last = {"completed": -1, "time": float("-inf")}

    def update(completed: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if completed == last["completed"]:
            return
        if completed < total and last["completed"] >= 0 and now - last["time"] < PLAIN_PROGRESS_SECONDS:
            return
        last.update(completed=completed, time=now)
        err_console.print(
            f"{description}: {completed}/{total} {message}".rstrip(), highlight=False, markup=False
        )

    return update


def _cli_annotation(tp: Any) -> tuple[Any, Callable[[Any], Any]]:
    """Map a config field type to a Typer-friendly annotation and a parser of the flag's value."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _cli_annotation(args[0])
    if tp in (bool, int, float):
        return tp, lambda v: v
    if tp is str or origin is Literal:
        return str, lambda v: v

    def parse(value: Any) -> Any:
        text = str(value)
        if "," in text and not text.lstrip().startswith(("[", "{")):
            text = f"[{text}]"
        parsed = yaml.safe_load(text)
        if get_origin(tp) is tuple and not isinstance(parsed, (list, tuple)):
            n = len(get_args(tp))
            if n and get_args(tp)[-1] is not Ellipsis:
                parsed = [parsed] * n
        return parsed

    return str, parse


def with_config_options(config_cls: type, *, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Add one ``--flag`` per field of ``config_cls`` to a Typer command.

    The wrapped function must accept a keyword argument ``overrides: dict[str, Any]``;
    it receives the flags the user gave (unset flags are left out), ready for
    :func:`hecktorseg.config.merge`. Tuple fields accept ``1,1,1`` or a single
    value that is repeated; booleans get ``--x/--no-x``.
    """

    def decorator(func: F) -> F:
        sig = inspect.signature(func)
        params = [p for p in sig.parameters.values() if p.name != "overrides"]
        taken = {p.name for p in params}
        parsers: dict[str, Callable[[Any], Any]] = {}
        extra: list[inspect.Parameter] = []
        for field in config_fields(config_cls):
            if field.name in exclude or field.name in taken:
                continue
            annotation, parser = _cli_annotation(field.type)
            flag = "--" + field.name.replace("_", "-")
            decls = [f"{flag}/--no-{flag[2:]}"] if annotation is bool else [flag]
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = "(computed)"
            help_ = f"{help_text(field)} (default: {default})"
            extra.append(
                inspect.Parameter(
                    _PREFIX + field.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=typer.Option(
                        None, *decls, help=help_, rich_help_panel=CONFIG_PANEL, show_default=False
                    ),
                    annotation=Optional[annotation],  # noqa: UP045 - Typer needs a runtime Optional
                )
            )
            parsers[field.name] = parser

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            overrides: dict[str, Any] = {}
            for key in list(kwargs):
                if key.startswith(_PREFIX):
                    value = kwargs.pop(key)
                    name = key[len(_PREFIX) :]
                    if value is not None:
                        overrides[name] = parsers[name](value)
            return func(*args, overrides=overrides, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params + extra)  # type: ignore[attr-defined]
        return typing.cast(F, wrapper)

    return decorator


# -- inference options shared by ``predict``, ``container predict`` and others ---------------------


def backend_option() -> Any:
    """``--backend auto|torch|openvino|onnxruntime`` (see :class:`hecktorseg.inference.PredictorConfig`)."""
    return typer.Option(
        "auto",
        "--backend",
        help="Inference backend: auto (the fastest verified one installed here), torch, openvino or "
        "onnxruntime. '--backend torch --precision fp32' is the exact reference.",
    )


def precision_option() -> Any:
    """``--precision auto|fp32|bf16|fp16``."""
    return typer.Option(
        "auto",
        "--precision",
        help="auto (the fastest verified as accurate on this machine), fp32, bf16 (CPUs with native bf16; "
        "the output layer stays fp32) or fp16 (CUDA).",
    )


def tta_batch_option() -> Any:
    """``--tta-batch N``: mirrorings per forward pass."""
    return typer.Option(1, "--tta-batch", min=1, max=8, help="Test-time mirrorings run as one batch.")


def threads_option() -> Any:
    """``--threads N``: CPU threads of torch and the inference backend."""
    return typer.Option(None, "--threads", min=1, help="CPU threads (default: torch's choice).")
