"""Machinery shared by every configuration class: attrs ↔ plain dict ↔ YAML, strictly validated.

Configuration classes are frozen attrs classes whose fields carry a help text
in ``metadata={"help": ...}``. :func:`from_dict` rejects unknown keys and
values of the wrong type with a :class:`~hecktorseg.errors.ConfigError` that
names the field (``train.lr: expected a number, got 'fast'``).
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import yaml

from hecktorseg.errors import ConfigError
from hecktorseg.io.atomic import atomic_write_text
from hecktorseg.typing import PathLike

__all__ = [
    "config_fields",
    "from_dict",
    "help_text",
    "load_yaml",
    "merge",
    "save_yaml",
    "to_dict",
]

T = TypeVar("T")


def help_text(field: attrs.Attribute[Any]) -> str:
    """The help text of a configuration field (empty if none)."""
    return str(field.metadata.get("help", ""))


def config_fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    """The fields of a configuration class, with their type hints resolved."""
    attrs.resolve_types(cls)
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(cls)
    return fields


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} values"
    if origin in (list, typing.List):  # noqa: UP006
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "a mapping"
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if attrs.has(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    bad = ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise bad
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
        raise bad
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise bad from None
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, (list, tuple)):
            raise bad
        (arg,) = get_args(tp)
        return [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if isinstance(tp, type) and attrs.has(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise bad
        return from_dict(tp, value, where=where)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "config") -> T:
    """Build configuration ``cls`` from a mapping, strictly.

    Parameters
    ----------
    cls
        An attrs configuration class.
    data
        Field values; missing fields keep their defaults.
    where
        Prefix naming the configuration in error messages (e.g. a file name).

    Raises
    ------
    ConfigError
        A key is not a field of ``cls`` (the message lists the valid ones), a
        value has the wrong type, or the class's own validation fails.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    fields = {f.name: f for f in config_fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}",
            hint="valid fields: " + ", ".join(sorted(fields)),
        )
    kwargs = {name: _coerce(value, fields[name].type, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # the class's own checks name the field; say which configuration
        raise ConfigError(f"{where}: {exc.message}", path=exc.path, hint=exc.hint) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return to_dict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """A plain (YAML/JSON-friendly) dictionary of an attrs configuration."""
    return {f.name: _plain(getattr(config, f.name)) for f in attrs.fields(type(config))}


def merge(config: T, overrides: Mapping[str, Any], *, where: str = "override") -> T:
    """A copy of ``config`` with ``overrides`` applied (validated like :func:`from_dict`).

    Keys with the value ``None`` are ignored, so unset command-line flags pass through.
    """
    changes = {k: v for k, v in overrides.items() if v is not None}
    if not changes:
        return config
    data = to_dict(config)
    data.update(changes)
    return from_dict(type(config), data, where=where)


class _UniqueKeySafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (line {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(cls: type[T], path: PathLike, *, section: str | None = None, base: T | None = None) -> T:
    """Load configuration ``cls`` from a YAML file (``yaml.safe_load``).

    Parameters
    ----------
    cls
        The configuration class.
    path
        YAML file.
    section
        If given and the file's top level has this key, read the mapping under it.
    base
        Values of the fields the file does not set (e.g. a preset such as
        ``TrainConfig.paper()``); default: the class's defaults. A field the file
        sets, even to ``null``, overrides ``base``.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError("configuration path is a folder", path=p, hint="give the YAML file itself")
    if p.exists() and not p.is_file():  # a FIFO or device would block or never end
        raise ConfigError("configuration path is not a regular file", path=p, hint="give the YAML file")
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeySafeLoader)
    except FileNotFoundError:
        raise ConfigError("configuration file not found", path=p) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not a UTF-8 text file (byte {exc.start})", path=p, hint="save the YAML file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file ({exc.strerror or exc})", path=p) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=p) from None
    if data is None:
        data = {}
    if section is not None and isinstance(data, Mapping) and section in data:
        data = data[section]
    if base is not None and isinstance(data, Mapping):
        data = {**to_dict(base), **data}
    return from_dict(cls, data, where=str(p))


def save_yaml(config: Any, path: PathLike, *, header: str = "") -> None:
    """Write a configuration to YAML atomically, fields in declaration order.

    ``header`` (``#`` comment lines) goes first; comments leave the file loadable as the config.
    """
    if any(line and not line.startswith("#") for line in header.splitlines()):
        raise ValueError("save_yaml: header lines must be YAML comments (start with '#')")
    text = header + yaml.safe_dump(to_dict(config), sort_keys=False)
    atomic_write_text(path, text)
