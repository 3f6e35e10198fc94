"""The search's own efficiency: the best CV mean so far against trials and against search
time, pruned trials marked, so a reader sees whether more trials would pay.

Search time is wall-clock time during which at least one trial of the study was running
(the union of the trials' [start, complete] intervals): parallel workers are not counted
twice, and the idle days between a run and its resume are left out. Only complete trials
move the best so far: a pruned trial's partial mean is over fewer folds, no CV mean.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from hpo.trial.metrics import cv_value


@dataclass(frozen=True)
class Point:
    """One finished trial: its number, its value (CV mean, or a pruned trial's partial mean
    over the folds it ran; None when it ran none), and the search time at its end."""

    number: int
    value: float | None
    pruned: bool
    seconds: float


@dataclass
class Efficiency:
    """Finished trials in trial order (``by_trial``) and in the order they ended
    (``by_time``), with the best CV mean so far after each complete one."""

    by_trial: list[Point] = field(default_factory=list)
    by_time: list[Point] = field(default_factory=list)
    best_by_trial: list[tuple[int, float]] = field(default_factory=list)  # (number, best)
    best_by_time: list[tuple[float, float]] = field(default_factory=list)  # (seconds, best)
    total_seconds: float = 0.0

    def summary(self) -> dict[str, Any] | None:
        """Where the best came: its trial, how many finished trials and what share of the
        search time it took to reach it, how many finished trials since did not beat it."""
        if not self.best_by_trial:
            return None
        best = self.best_by_trial[-1][1]
        number = next(n for n, b in self.best_by_trial if b == best)
        at = next(i for i, p in enumerate(self.by_trial) if p.number == number) + 1
        seconds = next(p.seconds for p in self.by_time if p.number == number)
        # Rounded as every number a person reads is (6 decimals, tenths of a second).
        return {
            "best": round(best, 6),
            "trial": number,
            "finished_to_reach": at,
            "finished": len(self.by_trial),
            "pruned": sum(p.pruned for p in self.by_trial),
            "seconds_to_reach": round(seconds, 1),
            "total_seconds": round(self.total_seconds, 1),
            "since": len(self.by_trial) - at,
        }


def search_efficiency(trials: list[FrozenTrial], metric: str, maximize: bool) -> Efficiency:
    """The best-so-far series of ``trials`` (any states: only complete and pruned ones are
    points; every trial that ran counts towards the search time)."""
    busy = _BusyTime([(t.datetime_start, t.datetime_complete) for t in trials])
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    points = {
        t.number: Point(
            t.number,
            cv_value(t, metric).value,
            t.state == TrialState.PRUNED,
            busy.at(t.datetime_complete),
        )
        for t in done
    }
    eff = Efficiency(total_seconds=busy.total)
    eff.by_trial = [points[n] for n in sorted(points)]
    ends = {t.number: t.datetime_complete or datetime.max for t in done}
    eff.by_time = sorted(points.values(), key=lambda p: (ends[p.number], p.number))
    eff.best_by_trial = [(p.number, b) for p, b in _running_best(eff.by_trial, maximize)]
    eff.best_by_time = [(p.seconds, b) for p, b in _running_best(eff.by_time, maximize)]
    return eff


def _running_best(points: list[Point], maximize: bool) -> list[tuple[Point, float]]:
    """(point, best CV mean up to it) for each complete point, in the order given."""
    out: list[tuple[Point, float]] = []
    best: float | None = None
    for p in points:
        if p.pruned or p.value is None:
            continue
        if best is None or (p.value > best if maximize else p.value < best):
            best = p.value
        out.append((p, best))
    return out


class _BusyTime:
    """Seconds, from the first trial's start, during which some trial was running."""

    def __init__(self, spans: list[tuple[datetime | None, datetime | None]]) -> None:
        closed = sorted((a, b) for a, b in spans if a is not None and b is not None and b >= a)
        self.origin = closed[0][0] if closed else None
        merged: list[list[datetime]] = []
        for a, b in closed:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.starts = [a for a, _ in merged]
        self.ends = [b for _, b in merged]
        self.before: list[float] = []  # busy seconds before each merged interval
        total = 0.0
        for a, b in merged:
            self.before.append(total)
            total += (b - a).total_seconds()
        self.total = total

    def at(self, t: datetime | None) -> float:
        """Busy seconds up to ``t`` (the total for an unknown time)."""
        if t is None or not self.starts:
            return self.total
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.before[i] + (min(t, self.ends[i]) - self.starts[i]).total_seconds()


def time_unit(seconds: float) -> tuple[float, str]:
    """A divisor and its name, so a time axis reads in seconds, minutes or hours."""
    if seconds >= 2 * 3600:
        return 3600.0, "h"
    if seconds >= 120:
        return 60.0, "min"
    return 1.0, "s"


def efficiency_sentence(eff: Efficiency, metric: str) -> str:
    """In words, for the figure's caption: when the best came and what followed it."""
    s = eff.summary()
    if s is None:
        return ""
    div, unit = time_unit(s["total_seconds"])
    share = s["seconds_to_reach"] / s["total_seconds"] if s["total_seconds"] else 1.0
    since = (
        f"the {s['since']} finished trials since did not improve it"
        if s["since"]
        else "it came with the last finished trial, so more trials may still pay"
    )
    return (
        f"The best CV mean {metric} ({s['best']:.4f}, trial #{s['trial']}) came after "
        f"{s['finished_to_reach']} of {s['finished']} finished trials and "
        f"{s['seconds_to_reach'] / div:.3g} of {s['total_seconds'] / div:.3g} {unit} of search "
        f"time ({share:.0%}); {since}. {s['pruned']} of {s['finished']} were pruned."
    )
