"""Is the search space the right size? Two checks for ``hpo status`` and ``hpo report``.

- **Edge**: the best trial's value of a numeric parameter lies in the outer 5% of its
  range (of its logarithm, for a log-scale parameter). The optimum may lie outside the
  space, so the study cannot find it: widen the range.
- **Plateau**: many complete trials share one value, to 4 decimals. Whatever varied among
  them changed nothing (a hard-margin SVM scores the same for every C above some value),
  and every trial spent there was wasted: narrow the range or change what is searched.

Each check gives JSON-ready dicts with a ``message`` in words; nothing here knows a kind.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

EDGE = 0.05  # share of the (log) range at each end that counts as the edge
PLATEAU_DECIMALS = 4
# A tie is a plateau from this many trials, or this share of the complete ones if more:
# 10 of a 100-trial study (the budget target of issue #17 is fewer than 10).
PLATEAU_MIN_TRIALS = 5
PLATEAU_SHARE = 0.10


def space_checks(complete: list[FrozenTrial], best: FrozenTrial | None, metric: str) -> dict:
    """``{"warnings": [edge and plateau warnings], "largest_tie": {"value", "trials"}}``.

    Args:
        complete: the study's complete trials.
        best: its best trial (None when there is none).
        metric: the objective's name, for the messages.
    """
    warnings = edge_warnings(best) if best is not None else []
    warnings += plateau_warnings(complete, metric)
    ties = _ties(complete)
    top = max(ties.items(), key=lambda kv: len(kv[1]), default=None)
    tie = {"value": top[0], "trials": len(top[1])} if top else None
    return {"warnings": warnings, "largest_tie": tie}


def edge_warnings(best: FrozenTrial) -> list[dict[str, Any]]:
    """One warning per numeric parameter of ``best`` in the outer ``EDGE`` of its range."""
    out = []
    for name, dist in best.distributions.items():
        if not isinstance(dist, FloatDistribution | IntDistribution) or dist.low >= dist.high:
            continue
        value = best.params[name]
        pos = _position(value, dist)
        side = "lower" if pos <= EDGE else "upper" if pos >= 1 - EDGE else None
        if side is None:
            continue
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
                "message": f"{name} = {_num(value, 3)} is at the {side} edge of "
                f"[{_num(dist.low)}, {_num(dist.high)}]: widen the range",
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
    """One warning per value shared (to ``PLATEAU_DECIMALS``) by a plateau's worth of trials."""
    n = len(complete)
    need = max(PLATEAU_MIN_TRIALS, math.ceil(PLATEAU_SHARE * n))
    out = []
    for value, ts in sorted(_ties(complete).items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(ts) < need:
            continue
        fixed, varying = _what_varies(ts)
        what = ", ".join(varying) or "nothing searched"
        ranges = "; ".join(
            f"{k} from {_num(lo, 3)} to {_num(hi, 3)}" for k, (lo, hi) in varying.items()
        )
        with_ = ", ".join(f"{k} = {v}" for k, v in fixed.items())
        out.append(
            {
                "kind": "plateau",
                "value": value,
                "trials": len(ts),
                "of": n,
                "numbers": sorted(t.number for t in ts),
                "fixed": fixed,
                "varying": {k: list(r) for k, r in varying.items()},
                "message": f"{len(ts)} of {n} complete trials scored {metric} "
                f"{value:.{PLATEAU_DECIMALS}f}"
                + (f", all with {with_}" if with_ else "")
                + (f" ({ranges})" if ranges else "")
                + f": a plateau where {what} does nothing; narrow the range",
            }
        )
    return out


def _ties(complete: list[FrozenTrial]) -> dict[float, list[FrozenTrial]]:
    groups: dict[float, list[FrozenTrial]] = defaultdict(list)
    for t in complete:
        if t.value is not None:
            groups[round(t.value, PLATEAU_DECIMALS)].append(t)
    return groups


def _what_varies(ts: list[FrozenTrial]) -> tuple[dict[str, Any], dict[str, tuple]]:
    """Parameters every trial of ``ts`` shares, and the numeric ones that differ (min, max)."""
    names = [k for k in ts[0].params if all(k in t.params for t in ts)]
    fixed = {k: ts[0].params[k] for k in names if all(t.params[k] == ts[0].params[k] for t in ts)}
    varying: dict[str, tuple] = {}
    for k in names:
        if k in fixed or isinstance(ts[0].distributions.get(k), CategoricalDistribution):
            continue
        vals = [t.params[k] for t in ts]
        varying[k] = (min(vals), max(vals))
    return fixed, varying


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
