"""Typed, validated sections of a TOML file: a dataclass per section, one error per mistake.

The one mechanism that validates study files: ``build`` checks keys and types, refuses
non-finite numbers (TOML allows ``nan`` and ``inf``, a study never wants them), then calls
the dataclass's own ``check(where)`` for rules across fields.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from hpo.errors import SpecError

T = TypeVar("T")


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (list, tuple):
        return "a list"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def build(cls: type[T], table: Any, where: str) -> T:
    """Build dataclass ``cls`` from a TOML table; ``where`` prefixes errors ("file: [section]").

    Unknown keys, wrong types and missing required keys raise SpecError naming the key.
    """
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table")
    hints = typing.get_type_hints(cls)
    flds = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in flds:
            known = ", ".join(sorted(flds))
            raise SpecError(f"{where}: unknown key '{key}' (known: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in flds.items():
        if name in table:
            value = table[name]
            if not _type_ok(value, hints[name]):
                raise SpecError(
                    f"{where}: '{name}' must be {_describe(hints[name])}, got {value!r}"
                )
            if not _finite(value):
                raise SpecError(f"{where}: '{name}' must be a finite number, got {value!r}")
            kwargs[name] = float(value) if hints[name] is float else value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{where}: missing required key '{name}'")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(where)
    return obj


def _finite(value: Any) -> bool:
    """False for NaN/inf anywhere in a value (lists included)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def build_sections(cls: type[T], raw: dict[str, Any], where: str) -> T:
    """A kind's settings: dataclass ``cls`` whose every field is one TOML section, built
    (and validated) with ``build`` from the table of the same name."""
    hints = typing.get_type_hints(cls)
    return cls(
        **{
            f.name: build(hints[f.name], raw.get(f.name), f"{where}: [{f.name}]")
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        }
    )
