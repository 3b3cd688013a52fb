"""Helpers for frozen dataclass configs: JSON round trips, presets, overrides.

A config class subclasses ``ConfigMixin`` and declares ``PRESETS`` (a mapping
from preset name to keyword overrides of the defaults). Validation belongs in
the class's ``__post_init__``; derived values are properties.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="ConfigMixin")


class ConfigMixin:
    """Mixin for ``@dataclass(frozen=True)`` configs."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"{cls.__name__}: unknown field(s) {unknown}; expected a subset of {sorted(names)}"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce(hints[k], v) for k, v in data.items()}
        return cls(**kwargs)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls: type[T], text_or_path: str | Path) -> T:
        """Read from a path, or parse JSON text (anything starting with ``{``)."""
        if isinstance(text_or_path, str) and text_or_path.lstrip().startswith("{"):
            text = text_or_path
        else:
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))

    @classmethod
    def preset(cls: type[T], name: str, **overrides: Any) -> T:
        if name not in cls.PRESETS:
            raise ValueError(
                f"{cls.__name__}: unknown preset {name!r}; choose from {sorted(cls.PRESETS)}"
            )
        return cls.from_dict({**cls.PRESETS[name], **overrides})

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)

    def with_overrides(self: T, items: Sequence[str]) -> T:
        """Apply ``["key=value", ...]`` strings (from a command line)."""
        return self.replace(**parse_overrides(type(self), items))


def parse_overrides(cls: type, items: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings into typed values for the fields of ``cls``."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in names:
            raise ValueError(
                f"override {item!r}: {cls.__name__} has no field {key!r}; "
                f"fields are {sorted(names)}"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = _coerce(hints[key], value)
        _check_override(item, hints[key], out[key])
    return out


def _check_override(item: str, hint: Any, value: Any) -> None:
    """A ``key=value`` override must have its field's type and, if a number, be finite."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and isinstance(value, tuple):
        types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        for t, v in zip(types, value):
            _check_override(item, t, v)
        return
    if hint in (int, float, str, bool):
        ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
        if not ok:
            raise ValueError(f"override {item!r}: expected a value of type {hint.__name__}")
        if hint is float and not math.isfinite(value):
            raise ValueError(f"override {item!r}: expected a finite number")


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


def _coerce(hint: Any, value: Any) -> Any:
    """Turn a JSON value back into the annotated type (tuples, floats, nested configs)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(non_none[0], value) if len(non_none) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return hint.from_dict(value) if hasattr(hint, "from_dict") else hint(**value)
    if origin is tuple and isinstance(value, list | tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value)) if args else tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
