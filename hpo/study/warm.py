"""Warm start: the best configurations of another study enqueued as this study's first trials.

``hpo run --warm-start SOURCE[:K]`` takes SOURCE's K best COMPLETE trials (another corpus,
another storage too) and queues their parameters with ``study.enqueue_trial`` before any
sampled trial, so a new corpus starts from what worked elsewhere and TPE models the space
around them from its first trials. Only what this study's space can take is queued: a
parameter this space lacks is dropped, a categorical value it lacks is left to the sampler,
a number outside its range is clipped; each such change is said in a note. The source
trials queued are recorded in the study's ``warm_start`` user attribute, so a resumed run
never queues them twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from hpo.config.space import Param
from hpo.errors import HpoError

ATTR = "warm_start"  # study user attribute: ["SOURCE#NUMBER", ...] already queued
DEFAULT_K = 10


@dataclass(frozen=True)
class WarmStart:
    """``--warm-start SOURCE[:K]``: which study, how many of its best, and where it lives
    (None: the storage of the study being run)."""

    source: str
    k: int = DEFAULT_K
    storage: str | None = None


@dataclass
class Enqueued:
    """What a warm start did: the source trials queued now, and notes on changed params."""

    source: str
    queued: list[int] = field(default_factory=list)
    already: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What ``hpo run`` prints about it."""
        shown = ", ".join(map(str, self.queued))
        head = (
            f"warm start: queued {len(self.queued)} configuration(s) of study '{self.source}' "
            f"(its trials {shown}) as the next trials"
            if self.queued
            else f"warm start: nothing new to queue from study '{self.source}'"
        )
        if self.already:
            head += f"; {self.already} queued by an earlier run, not again"
        return [head, *(f"warm start: {n}" for n in self.notes)]


def parse_warm_start(text: str, storage: str | None = None) -> WarmStart:
    """``SOURCE`` or ``SOURCE:K`` (K >= 1) as a ``WarmStart``; HpoError in one line if not."""
    name, sep, k = text.rpartition(":")  # study names hold no ':' (hpo.config.study)
    if not sep:
        name, k = text, ""
    if not name:
        raise HpoError(f"--warm-start {text!r}: give a study name, as STUDY or STUDY:K")
    if sep:
        if not k.isdigit() or int(k) < 1:
            raise HpoError(f"--warm-start {text!r}: K must be a whole number >= 1 (STUDY:K)")
        return WarmStart(name, int(k), storage)
    return WarmStart(name, DEFAULT_K, storage)


def best_complete(source: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best COMPLETE trials of ``source``, best first (pruned trials carry one
    fold's score, not a CV mean, and are never taken)."""
    done = [
        t
        for t in source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not done:
        raise HpoError(
            f"--warm-start: study '{source.study_name}' has no complete trials to start from"
        )
    maximize = source.direction == optuna.study.StudyDirection.MAXIMIZE
    done.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
    return done[:k]


def load_source(ws: WarmStart, storage_url: str) -> list[FrozenTrial]:
    """The source study's ``ws.k`` best complete trials, from ``ws.storage`` or else
    ``storage_url``; HpoError for a storage or study that is not there (naming the studies
    it has) or a study without complete trials. Read before the study being run is
    created: a bad source leaves nothing behind."""
    from hpo.study.storage import load_study, open_storage

    try:
        storage = open_storage(ws.storage or storage_url, create=False)
        source = load_study(storage, ws.source)
    except HpoError as e:
        raise HpoError(f"--warm-start: {e}") from None
    return best_complete(source, ws.k)


def warm_start(
    study: optuna.Study, space: tuple[Param, ...], storage_url: str, source: str, trials: list
) -> Enqueued:
    """``enqueue_best`` under the lock every worker of the study takes to ask for a trial:
    runs started together on one study queue the source's trials once between them."""
    from hpo.study.locks import ask_lock
    from hpo.study.storage import open_storage

    lock = ask_lock(open_storage(storage_url, create=False), storage_url, study.study_name)
    try:
        lock.acquire()
        return enqueue_best(study, space, source, trials)
    finally:
        lock.close()


def fit_params(params: dict[str, Any], space: tuple[Param, ...]) -> tuple[dict[str, Any], list]:
    """``params`` as this ``space`` can take them, and a note for each change.

    Walks the space in declaration order, as ``suggest`` does: a conditional parameter is
    kept only when active under the values kept before it."""
    kept: dict[str, Any] = {}
    notes: list[str] = []
    names = {p.name for p in space}
    for name in params:
        if name not in names:
            notes.append(f"'{name}' is not in this study's space; dropped")
    for p in space:
        if p.name not in params or not p.active(kept):
            continue
        value, note = _fit(p, params[p.name])
        if note:
            notes.append(note)
        if value is not None:
            kept[p.name] = value
    return kept, notes


def _fit(p: Param, value: Any) -> tuple[Any, str | None]:
    d = p.distribution
    if isinstance(d, CategoricalDistribution):
        if value in d.choices:
            return value, None
        return None, f"'{p.name}' = {value!r} is not a choice here; left to the sampler"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None, f"'{p.name}' = {value!r} is not a number; left to the sampler"
    assert isinstance(d, FloatDistribution | IntDistribution)
    fitted = min(max(value, d.low), d.high)
    if d.step is not None:  # onto the range's grid, as Optuna would sample it
        fitted = d.low + round((fitted - d.low) / d.step) * d.step
        fitted = min(fitted, d.high)
    fitted = int(round(fitted)) if isinstance(d, IntDistribution) else float(fitted)
    if fitted != value:
        return fitted, f"'{p.name}' = {value:g} is outside [{d.low:g}, {d.high:g}]; {fitted:g}"
    return fitted, None


def enqueue_best(
    study: optuna.Study, space: tuple[Param, ...], source: str, trials: list[FrozenTrial]
) -> Enqueued:
    """Queue the parameters of ``trials`` (of study ``source``) on ``study``, skipping those
    an earlier run queued already (the study's ``warm_start`` attribute).

    Call it before any worker asks for a trial: Optuna hands out queued trials first."""
    done = list(study.user_attrs.get(ATTR, []))
    out = Enqueued(source)
    for t in trials:
        key = f"{source}#{t.number}"
        if key in done:
            out.already += 1
            continue
        params, notes = fit_params(t.params, space)
        out.notes.extend(f"trial {t.number}: {n}" for n in notes)
        done.append(key)
        # Recorded before it is queued: a run killed in between loses one warm trial, never
        # queues one twice.
        study.set_user_attr(ATTR, done)
        study.enqueue_trial(params, user_attrs={"warm_start_from": key})
        out.queued.append(t.number)
    return out
