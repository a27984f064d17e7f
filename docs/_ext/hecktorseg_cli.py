"""A small Sphinx extension documenting the CLI (from the Typer app) and configuration classes.

Usage in a page::

    .. typer-cli:: hecktorseg.cli:app
       :prog: hecktorseg

    .. config-fields:: hecktorseg.training.TrainConfig

Each command becomes a section with its help text, a usage line and the table of its
arguments and options (grouped by help panel). Only public, duck-typed attributes of the
command objects are used, so the extension works with Typer's own command classes whatever
Click flavour sits underneath.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_RST_SPECIAL = re.compile(r"([\\`*|_])")
_RICH_MARKUP = re.compile(r"\[(/?)(bold|italic|dim|red|green|yellow|blue|cyan|magenta|underline)?\]")
_TYPE_NAMES = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "Path": "PATH", "PosixPath": "PATH"}


def _escape(text: str) -> str:
    """Make plain help text safe inside reST (no accidental emphasis, references or substitutions)."""
    return _RST_SPECIAL.sub(r"\\\1", _RICH_MARKUP.sub("", text))


def _help_text(command: Any) -> str:
    text = command.help or ""
    text = text.split("\f", 1)[0]  # Click convention: stop at form feed
    return inspect.cleandoc(text.replace("\b\n", ""))


def _metavar(param: Any) -> str:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if getattr(param, "metavar", None):
        return str(param.metavar)
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is None and getattr(param, "type", None) is not None:
        return str(getattr(param.type, "name", "VALUE")).upper()
    name = getattr(annotation, "__name__", "")
    return _TYPE_NAMES.get(name, "VALUE")


def _is_argument(param: Any) -> bool:
    kind = getattr(param, "param_type_name", None)
    if kind is not None:
        return kind == "argument"
    return not any(opt.startswith("-") for opt in param.opts)


def _default(param: Any) -> str | None:
    if not getattr(param, "show_default", True) or getattr(param, "required", False):
        return None
    default = param.default
    if default is None or callable(default) or getattr(param, "count", False):
        return None
    if getattr(param, "is_flag", False):
        if not param.secondary_opts:
            return None
        return param.opts[0] if default else param.secondary_opts[0]
    return str(default)


def _argument_name(param: Any) -> str:
    """An argument's display name: its metavar (without brackets) or its upper-cased name."""
    metavar = getattr(param, "metavar", None)
    return str(metavar).strip("[]") if metavar else str(param.name).upper()


def _usage(prog: str, command: Any, is_group: bool) -> str:
    pieces = [prog, "[OPTIONS]"]
    for param in command.params:
        if _is_argument(param) and not getattr(param, "hidden", False):
            name = _argument_name(param)
            name = f"{name}..." if getattr(param, "nargs", 1) == -1 else name
            pieces.append(name if getattr(param, "required", False) else f"[{name}]")
    if is_group:
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def render_command(command: Any, prog: str, *, level: int = 0) -> list[str]:
    """reST lines documenting ``command`` (and its sub-commands, one level deeper)."""
    underline = "=-~^"[min(level, 3)]
    subcommands = dict(getattr(command, "commands", {}) or {})
    title = f"``{prog}``"
    lines = [f".. _cli-{prog.replace(' ', '-')}:", "", title, underline * len(title), ""]
    help_text = _help_text(command)
    if help_text:
        lines += [_escape(help_text), ""]
    lines += [".. code-block:: text", "", "   " + _usage(prog, command, bool(subcommands)), ""]

    panels: dict[str, list[Any]] = {}
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        panel = "Arguments" if _is_argument(param) else (getattr(param, "rich_help_panel", None) or "Options")
        panels.setdefault(panel, []).append(param)
    panels.setdefault("Options", [])
    for panel, params in panels.items():
        if not params and panel != "Options":
            continue
        lines += [f".. rubric:: {_escape(panel)}", ""]
        if panel == "Options":
            params = [*params, None]  # --help is always there
        for param in params:
            if param is None:
                lines += ["``--help``, ``-h``", "    Show the help and exit.", ""]
                continue
            if _is_argument(param):
                head = f"``{_argument_name(param)}``"
            else:
                metavar = _metavar(param)
                names = [f"{o} {metavar}".strip() for o in param.opts] + list(param.secondary_opts)
                head = ", ".join(f"``{n}``" for n in names)
            text = _escape(" ".join((getattr(param, "help", None) or "").split()))
            default = _default(param)
            if default is not None and "(default:" not in text:
                text += f" (default: ``{default}``)"
            if getattr(param, "required", False):
                text += " *Required.*"
            lines += [head, f"    {text.strip() or '(no description)'}", ""]
    for name in subcommands:  # registration order: the pipeline order
        sub = subcommands[name]
        if getattr(sub, "hidden", False):
            continue
        lines += render_command(sub, f"{prog} {name}", level=level + 1)
    return lines


def load_command(spec: str) -> Any:
    """Load ``module:attribute`` and turn a Typer app into its command object."""
    module_name, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module_name), attr or "app")
    if hasattr(obj, "registered_commands"):  # a typer.Typer
        import typer.main

        obj = typer.main.get_command(obj)
    return obj


def _type_name(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if isinstance(tp, type) else None
    text = text or str(tp).replace("typing.", "")
    return re.sub(r"<class '([^']+)'>", r"\1", text)


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def render_config_fields(config_cls: Any) -> list[str]:
    """A reST list table of a configuration class: field, type, default, help."""
    import attrs

    from hecktorseg.config import config_fields, help_text

    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 20 18 14 48", ""]
    lines += ["   * - Field", "     - Type", "     - Default", "     - Meaning"]
    for field in config_fields(config_cls):
        default = field.default
        computed = isinstance(default, attrs.Factory)  # type: ignore[arg-type]
        shown = "(computed)" if computed else f"``{_yaml_value(default)}``"
        lines += [
            f"   * - ``{field.name}``",
            f"     - ``{_type_name(field.type)}``",
            f"     - {shown}",
            f"     - {_escape(' '.join(help_text(field).split()))}",
        ]
    return [*lines, ""]


class ConfigFieldsDirective(SphinxDirective):
    """``.. config-fields:: package.module.ConfigClass`` — a table of every field."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name, _, attr = self.arguments[0].rpartition(".")
        config_cls = getattr(importlib.import_module(module_name), attr)
        container = nodes.section()
        container.document = self.state.document
        lines = render_config_fields(config_cls)
        nested_parse_with_titles(self.state, StringList(lines, f"<config-fields {attr}>"), container)
        return list(container.children)


class TyperCliDirective(SphinxDirective):
    """``.. typer-cli:: module:app`` — document every command of a Typer app."""

    required_arguments = 1
    option_spec = {"prog": directives.unchanged}  # noqa: RUF012 - docutils API

    def run(self) -> list[nodes.Node]:
        command = load_command(self.arguments[0])
        prog = self.options.get("prog") or getattr(command, "name", None) or "cli"
        lines = render_command(command, prog)
        container = nodes.section()
        container.document = self.state.document
        source = f"<typer-cli {self.arguments[0]}>"
        nested_parse_with_titles(self.state, StringList(lines, source), container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``typer-cli`` and ``config-fields`` directives."""
    app.add_directive("typer-cli", TyperCliDirective)
    app.add_directive("config-fields", ConfigFieldsDirective)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
