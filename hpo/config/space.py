"""Search spaces: TOML ``[space.NAME]`` tables → Optuna distributions, in this one place.

A parameter is ``type = "float" | "int" | "categorical"`` with ``low``/``high`` (and
optional ``log``, ``step``) or ``choices``. ``when = { kernel = ["rbf", "poly"] }`` makes a
parameter conditional on an earlier categorical one: it is sampled only when that one took
one of the listed values (``gamma`` only for kernels that use it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hpo.errors import SpecError

_KEYS = {
    "float": {"type", "low", "high", "log", "step", "when", "help"},
    "int": {"type", "low", "high", "log", "step", "when", "help"},
    "categorical": {"type", "choices", "when", "help"},
}


@dataclass(frozen=True)
class Param:
    """One searchable parameter and the condition under which it exists."""

    name: str
    distribution: BaseDistribution
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    help: str = ""

    def active(self, params: Mapping[str, Any]) -> bool:
        return all(params.get(k) in allowed for k, allowed in self.when.items())


def _number(v: Any) -> bool:
    """A finite int or float (TOML's nan and inf are refused)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def parse_param(name: str, t: Any, where: str, earlier: dict[str, Param]) -> Param:
    at = f"{where}: [space.{name}]"
    if not isinstance(t, dict):
        raise SpecError(f"{at} must be a table with a 'type'")
    kind = t.get("type")
    if kind not in _KEYS:
        raise SpecError(f"{at}: unknown type {kind!r} (use float, int or categorical)")
    for k in t:
        if k not in _KEYS[kind]:
            raise SpecError(f"{at}: unknown key '{k}' for a {kind} parameter")
    if kind == "categorical":
        choices = t.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpecError(f"{at}: 'choices' must be a non-empty list")
        if any(isinstance(c, float) and not math.isfinite(c) for c in choices):
            raise SpecError(f"{at}: 'choices' must not hold nan or inf")
        if len(set(map(repr, choices))) != len(choices):
            raise SpecError(f"{at}: 'choices' has duplicates")
        dist: BaseDistribution = CategoricalDistribution(choices)
    else:
        low, high = t.get("low"), t.get("high")
        if not (_number(low) and _number(high)):
            raise SpecError(f"{at}: 'low' and 'high' must both be finite numbers")
        if low > high:
            raise SpecError(f"{at}: low ({low}) is greater than high ({high})")
        log, step = t.get("log", False), t.get("step")
        if not isinstance(log, bool):
            raise SpecError(f"{at}: 'log' must be true or false")
        if log and low <= 0:
            raise SpecError(f"{at}: a log scale needs low > 0, got {low}")
        if step is not None and (not _number(step) or step <= 0 or log):
            raise SpecError(f"{at}: 'step' must be a positive number and cannot go with log")
        if kind == "int":
            if not all(isinstance(v, int) for v in (low, high)):
                raise SpecError(f"{at}: an int parameter needs integer low and high")
            dist = IntDistribution(low, high, log=log, step=int(step or 1))
        else:
            dist = FloatDistribution(float(low), float(high), log=log, step=step)
    when = t.get("when", {})
    if not isinstance(when, dict):
        raise SpecError(f"{at}: 'when' must be a table like {{ kernel = [\"rbf\"] }}")
    cond: dict[str, tuple[Any, ...]] = {}
    for parent, allowed in when.items():
        p = earlier.get(parent)
        if p is None or not isinstance(p.distribution, CategoricalDistribution):
            raise SpecError(
                f"{at}: 'when' refers to '{parent}', which is not a categorical parameter "
                "declared above it"
            )
        allowed = allowed if isinstance(allowed, list) else [allowed]
        bad = [a for a in allowed if a not in p.distribution.choices]
        if bad:
            raise SpecError(f"{at}: 'when' value {bad[0]!r} is not a choice of '{parent}'")
        cond[parent] = tuple(allowed)
    return Param(name=name, distribution=dist, when=cond, help=str(t.get("help", "")))


def parse_space(table: Any, where: str) -> tuple[Param, ...]:
    """All parameters of ``[space]``, in declaration order."""
    if not isinstance(table, dict) or not table:
        raise SpecError(f"{where}: [space] must declare at least one parameter")
    params: dict[str, Param] = {}
    for name, t in table.items():
        params[name] = parse_param(name, t, where, params)
    return tuple(params.values())


def suggest(trial: optuna.Trial, space: tuple[Param, ...]) -> dict[str, Any]:
    """Sample every active parameter of ``space`` on ``trial``."""
    params: dict[str, Any] = {}
    for p in space:
        if p.active(params):
            params[p.name] = _sample(trial, p.name, p.distribution)
    return params


def _sample(trial: optuna.Trial, name: str, d: BaseDistribution) -> Any:
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    assert isinstance(d, FloatDistribution)
    return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
