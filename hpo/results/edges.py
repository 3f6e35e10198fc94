"""Is the search space the right size? Two checks for ``hpo status`` and ``hpo report``.

- **Edge**: the best trial's value of a numeric parameter lies in the outer 5% of its
  range (of its logarithm, for a log-scale parameter), once the study has 5 complete
  trials. The optimum may lie outside the space, so the study cannot find it: widen the
  range. Given the study's name and storage, the message ends with the command that does
  it and keeps the finished trials (``hpo study widen``, ``hpo.study.widen``).
- **Plateau**: many complete trials score the same to the last digit: fold for fold
  where the trials keep per-fold scores (every kind does), else their value. Whatever
  varied among them changed nothing (a hard-margin SVM scores the same for every C above
  some value), and every trial spent there was wasted: narrow the range. Equal means
  alone are no plateau: near an optimum many trials reach the same mean accuracy (the
  same count of correct clips) with different per-fold scores.

``largest_tie`` is issue #17's budget measure: the most complete trials sharing one value
to 4 decimals (the target is fewer than 10 in the default 100-trial study).

Each check gives JSON-ready dicts with a ``message`` in words; nothing here knows a kind.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from hpo.study.widen import widen_command, widened_bound

EDGE = 0.05  # share of the (log) range at each end that counts as the edge
# The best of fewer complete trials (the sampler's random start) says little about where the
# optimum lies: no edge warning before then.
EDGE_MIN_TRIALS = 5
PLATEAU_DECIMALS = 4
# A tie is a plateau from this many trials, or this share of the complete ones if more:
# 10 of a 100-trial study (the budget target of issue #17 is fewer than 10).
PLATEAU_MIN_TRIALS = 5
PLATEAU_SHARE = 0.10


def space_checks(
    complete: list[FrozenTrial],
    best: FrozenTrial | None,
    metric: str,
    study: str | None = None,
    url: str | None = None,
) -> dict:
    """``{"warnings": [edge and plateau warnings], "largest_tie": {"value", "trials"}}``.

    Args:
        complete: the study's complete trials.
        best: its best trial (None when there is none).
        metric: the objective's name, for the messages.
        study: the study's name, and ``url`` its storage: an edge warning then gives the
            command that widens the range.
    """
    enough = best is not None and len(complete) >= EDGE_MIN_TRIALS
    where = (study, url) if study is not None and url is not None else None
    warnings = edge_warnings(best, where) if enough else []
    warnings += plateau_warnings(complete, metric)
    return {"warnings": warnings, "largest_tie": largest_tie(complete)}


def largest_tie(complete: list[FrozenTrial]) -> dict[str, Any] | None:
    """The value shared, to ``PLATEAU_DECIMALS``, by the most complete trials, and how many."""
    counts = Counter(round(t.value, PLATEAU_DECIMALS) for t in complete if t.value is not None)
    if not counts:
        return None
    value, trials = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
    return {"value": value, "trials": trials}


def edge_warnings(best: FrozenTrial, where: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """One warning per numeric parameter of ``best`` in the outer ``EDGE`` of its range;
    with ``where`` (study name, storage URL), each names the command that widens it."""
    out = []
    for name, dist in best.distributions.items():
        if not isinstance(dist, FloatDistribution | IntDistribution) or dist.low >= dist.high:
            continue
        value = best.params[name]
        pos = _position(value, dist)
        side = "lower" if pos <= EDGE else "upper" if pos >= 1 - EDGE else None
        if side is None:
            continue
        bound = widened_bound(dist, side)
        command = widen_command(*where, name, side, bound) if where and bound is not None else None
        out.append(
            {
                "kind": "edge",
                "param": name,
                "value": value,
                "low": dist.low,
                "high": dist.high,
                "log": dist.log,
                "side": side,
                "position": round(pos, 4),
                "command": command,
                "message": f"{name} = {_num(value, 3)} is at the {side} edge of "
                f"[{_num(dist.low)}, {_num(dist.high)}]: widen the range"
                + (f": {command}" if command else ""),
            }
        )
    return out


def _position(value: float, dist: FloatDistribution | IntDistribution) -> float:
    """Where ``value`` lies in the range, 0 (low) to 1 (high); on log10 for a log scale."""
    if dist.log:
        low, high, value = math.log10(dist.low), math.log10(dist.high), math.log10(value)
    else:
        low, high = dist.low, dist.high
    return (value - low) / (high - low)


def plateau_warnings(complete: list[FrozenTrial], metric: str) -> list[dict[str, Any]]:
    """One warning per score shared, to the last digit, by a plateau's worth of trials."""
    n = len(complete)
    need = max(PLATEAU_MIN_TRIALS, math.ceil(PLATEAU_SHARE * n))
    groups: dict[tuple, list[FrozenTrial]] = defaultdict(list)
    for t in complete:
        folds = t.user_attrs.get(f"fold_{metric}")
        groups[("folds", *folds) if folds else ("value", t.value)].append(t)
    out = []
    for key, ts in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0].number)):
        if len(ts) >= need:
            out.append(_plateau(ts, n, metric, by_fold=key[0] == "folds"))
    return out


def _plateau(ts: list[FrozenTrial], n: int, metric: str, by_fold: bool) -> dict[str, Any]:
    fixed, varying, choices = _what_varies(ts)
    what = ", ".join([*choices, *varying]) or "nothing searched"
    ranges = "; ".join(
        f"{k} from {_num(lo, 3)} to {_num(hi, 3)}" for k, (lo, hi) in varying.items()
    )
    with_ = ", ".join(f"{k} = {v}" for k, v in fixed.items())
    value = ts[0].value
    return {
        "kind": "plateau",
        "value": value,
        "same_on_every_fold": by_fold,
        "trials": len(ts),
        "of": n,
        "numbers": sorted(t.number for t in ts),
        "fixed": fixed,
        "varying": {k: list(r) for k, r in varying.items()},
        "message": f"{len(ts)} of {n} complete trials scored {metric} "
        f"{value:.{PLATEAU_DECIMALS}f}{' on every fold alike' if by_fold else ''}"
        + (f", all with {with_}" if with_ else "")
        + (f" ({ranges})" if ranges else "")
        + f": a plateau where {what} does nothing; narrow the range",
    }


def _what_varies(ts: list[FrozenTrial]) -> tuple[dict[str, Any], dict[str, tuple], list[str]]:
    """What every trial of ``ts`` shares; the numeric parameters that differ (min, max);
    the categorical ones that differ."""
    names = [k for k in ts[0].params if all(k in t.params for t in ts)]
    fixed = {k: ts[0].params[k] for k in names if all(t.params[k] == ts[0].params[k] for t in ts)}
    varying: dict[str, tuple] = {}
    choices = []
    for k in names:
        if k in fixed:
            continue
        if isinstance(ts[0].distributions.get(k), CategoricalDistribution):
            choices.append(k)
            continue
        vals = [t.params[k] for t in ts]
        varying[k] = (min(vals), max(vals))
    return fixed, varying, choices


def _num(x: float, digits: int = 6) -> str:
    """A number as a person writes it, to ``digits`` significant digits: 0.0108, 1000, 1e-05."""
    if 1e-4 <= abs(x) < 1e6 or x == 0:
        return np.format_float_positional(
            float(x), precision=digits, unique=False, fractional=False, trim="-"
        )
    return f"{x:.{digits}g}"


def warnings_html(checks: dict) -> str:
    """The report's section: the warnings as a list, or a line saying there are none."""
    items = "".join(f"<li>{html.escape(w['message'])}</li>" for w in checks["warnings"])
    if not items:
        return "<h2>Search space</h2><p>No parameter of the best trial at an edge; no plateau.</p>"
    return f"<h2>Search space</h2><ul class=warn>{items}</ul>"
