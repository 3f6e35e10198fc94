"""``hpo study widen``: continue a study whose best trial sits at the edge of a range, with
that range widened and every finished trial kept.

Continuing the same study with a widened range (``hpo run --allow-changed-spec``) does not
work with hpo's sampler: multivariate TPE with ``group = true`` models each group of
parameters with the distribution its first trial recorded (Optuna's
``_GroupDecomposedSearchSpace`` keeps it), so it never samples beyond the old edge; in a
check with Optuna 5.1 (optimum beyond the old upper edge of C, 30 finished trials, 30
more), 0 of the 30 new trials went past the old edge, against 30 of 30 after the copy
below. So widening writes a copy: a study file with the range widened and a new name, and
a new study in the same storage holding the old one's finished trials (complete, pruned,
failed; their values, per-fold scores and reports, and times) under the widened
distributions (``Study.add_trial``). TPE and the pruner then use every one of them, and
``hpo run`` on the new file continues from there. The old study is left as it was.
"""

from __future__ import annotations

import copy
import json
import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import tomli_w
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from hpo.config.paths import STUDIES_DIR, storage_url
from hpo.config.study import spec_hash
from hpo.config.urls import redact
from hpo.errors import HpoError
from hpo.kinds import spec_from_dict
from hpo.study.open import annotate_study
from hpo.study.storage import load_study, open_storage, study_names
from hpo.util.io import write_text_atomic

COPIED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# Trials the copy adds to the new file's budget when none is given: half the old one.
MORE_SHARE = 0.5


@dataclass
class Widened:
    study: str  # the new study's name
    path: Path  # its study file
    param: str
    before: tuple[float, float]
    after: tuple[float, float]
    copied: int  # finished trials copied
    n_trials: int  # the new file's budget: the copied trials and the ones still to run
    command: str  # the `hpo run` that continues it


def widened_bound(dist: Any, side: str) -> float | int | None:
    """The bound to suggest for a range whose best trial sits at its ``side`` ("lower" or
    "upper") edge: a log range grows by about half its decades (at least one: C in [0.01,
    1000] to 1e5 or 1e-4), a linear one by half its width, never across zero (a sign
    usually is the parameter's meaning: a rate, a dropout). None when it cannot grow."""
    lo, hi = dist.low, dist.high
    if dist.log:
        decades = max(1, round(math.log10(hi / lo) / 2))
        new = hi * 10**decades if side == "upper" else lo / 10**decades
    else:
        step = (hi - lo) / 2
        new = hi + step if side == "upper" else lo - step
        if lo >= 0 > new:
            new = 0
    if isinstance(dist, IntDistribution):
        new = math.ceil(new) if side == "upper" else math.floor(new)
        new = max(new, 1) if dist.log else new
    new = float(f"{new:.6g}") if isinstance(new, float) else new
    return None if new == (hi if side == "upper" else lo) else new


def widen_command(study: str, url: str, param: str, side: str, value: float | int) -> str:
    """The ``hpo study widen`` that widens ``param`` of ``study`` to ``value``, runnable as
    printed (``--storage`` named unless it is the default one; a password is never shown)."""
    bound = "--high" if side == "upper" else "--low"
    return f"hpo study widen --study {study}{_storage_arg(url)} --param {param} {bound} {value:g}"


def _storage_arg(url: str) -> str:
    return "" if url == storage_url(None) else f" --storage {shlex.quote(redact(url))}"


def widen_study(
    url: str,
    name: str,
    param: str,
    low: float | None = None,
    high: float | None = None,
    new_name: str | None = None,
    out: Path | None = None,
    more: int | None = None,
) -> Widened:
    """Copy study ``name`` with ``param``'s range widened to [``low``, ``high``] (either
    left out: unchanged): a study file ``out`` (default ``studies/NEW.toml``) and a study
    ``new_name`` (default ``NAME-wide``, or ``NAME-wide2``... when taken) holding the old
    study's finished trials. ``more``: trials the new file's budget adds to them."""
    storage = open_storage(url, create=False)
    old = load_study(storage, name)
    raw = old.user_attrs.get("spec")
    if not isinstance(raw, dict):
        raise HpoError(f"study '{name}' has no stored definition to copy; widen its study file")
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    if not old.get_trials(deepcopy=False, states=finished):
        # Nothing to carry over: a copied study would only be the file with another range.
        raise HpoError(
            f"study '{name}' has no finished trials to carry over; widen {param} in its "
            "study file and run it"
        )
    table = raw.get("space", {}).get(param)
    numeric = [k for k, t in raw.get("space", {}).items() if t.get("type") in ("float", "int")]
    if not isinstance(table, dict) or table.get("type") not in ("float", "int"):
        raise HpoError(
            f"--param {param}: not a numeric parameter of study '{name}' "
            f"(numeric: {', '.join(numeric) or 'none'})"
        )
    before = (table["low"], table["high"])
    after = (before[0] if low is None else low, before[1] if high is None else high)
    if table["type"] == "int" and not all(float(v).is_integer() for v in after):
        raise HpoError(f"--low/--high: {param} is an int parameter; give whole numbers")
    if after[0] > before[0] or after[1] < before[1] or after == before:
        raise HpoError(
            f"--low/--high: [{after[0]:g}, {after[1]:g}] does not widen {param}'s range "
            f"[{before[0]:g}, {before[1]:g}]; give a lower --low or a higher --high"
        )
    taken = set(study_names(storage))
    new_name = new_name or _free_name(f"{name}-wide", taken)
    if new_name in taken:
        raise HpoError(f"--name {new_name}: a study of that name is already in this storage")
    path = out or STUDIES_DIR / f"{new_name}.toml"
    if path.exists():
        raise HpoError(f"{path}: already exists; give another --out or --name")
    new_raw = _widened_raw(raw, param, after, new_name, old, more)
    spec = spec_from_dict(new_raw, path)  # the kind's own checks of the new range
    dist = next(p.distribution for p in spec.space if p.name == param)
    try:
        copied = _copy(storage, old, new_name, param, dist, new_raw, spec)
        text = (
            f"# Study '{name}' with {param} widened from [{before[0]:g}, {before[1]:g}] to "
            f"[{after[0]:g}, {after[1]:g}] by hpo study widen, which copied its {copied}\n"
            f"# finished trials into study '{new_name}'. Its definition as stored with the "
            "study (comments not kept).\n"
        )
        write_text_atomic(path, text + tomli_w.dumps(new_raw))
    except BaseException:
        if new_name in study_names(storage):  # nothing left behind
            optuna.delete_study(study_name=new_name, storage=storage)
        raise
    command = f"hpo run --study {shlex.quote(str(path))}{_storage_arg(url)}"
    n_trials = new_raw["budget"]["n_trials"]
    return Widened(new_name, path, param, before, after, copied, n_trials, command)


def _free_name(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}{i}"
    return name


def _widened_raw(
    raw: dict, param: str, after: tuple, new_name: str, old: optuna.Study, more: int | None
) -> dict[str, Any]:
    """The stored definition with the new range, name and a budget past the copied trials."""
    new = copy.deepcopy(raw)
    table = new["space"][param]
    as_type = int if table["type"] == "int" else float
    table["low"], table["high"] = as_type(after[0]), as_type(after[1])
    new["name"] = new_name
    finished = len(old.get_trials(deepcopy=False, states=COPIED[:2]))
    budget = new.setdefault("budget", {})
    more = more if more is not None else math.ceil(MORE_SHARE * budget.get("n_trials", 100))
    budget["n_trials"] = finished + more
    return new


def _copy(
    storage: optuna.storages.BaseStorage,
    old: optuna.Study,
    new_name: str,
    param: str,
    dist: FloatDistribution | IntDistribution,
    new_raw: dict,
    spec: Any,
) -> int:
    """The new study: the old one's attributes (provenance, folds, labels) with the new
    definition, and its finished trials under the widened distribution."""
    new = optuna.create_study(storage=storage, study_name=new_name, direction=old.direction)
    attrs = dict(old.user_attrs)
    before = old.user_attrs["spec"]["space"][param]
    attrs |= {
        "spec": json.loads(json.dumps(new_raw, default=str)),
        "spec_hash": spec_hash(new_raw, getattr(spec.settings, "OPERATIONAL", {})),
        "widened_from": {
            "study": old.study_name,
            "param": param,
            "from": [before["low"], before["high"]],
            "to": [dist.low, dist.high],
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    for k, v in attrs.items():
        new.set_user_attr(k, v)
    annotate_study(new, spec, attrs)
    trials = old.get_trials(deepcopy=False, states=COPIED)
    for t in sorted(trials, key=lambda t: t.number):
        new.add_trial(_widened_trial(t, param, dist, old.study_name))
    return len(trials)


def _widened_trial(t: FrozenTrial, param: str, dist: Any, source: str) -> FrozenTrial:
    """``t`` with ``param``'s distribution widened; its retry bookkeeping (system
    attributes) stays with the old study, where those retries ran."""
    dists = {k: (dist if k == param else d) for k, d in t.distributions.items()}
    return FrozenTrial(
        number=t.number,
        state=t.state,
        value=t.value,
        values=None,
        datetime_start=t.datetime_start,
        datetime_complete=t.datetime_complete,
        params=t.params,
        distributions=dists,
        user_attrs={**t.user_attrs, "copied_from": {"study": source, "trial": t.number}},
        system_attrs={},
        intermediate_values=t.intermediate_values,
        trial_id=t._trial_id,
    )
