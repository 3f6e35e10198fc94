"""``hpo status``: the studies in a storage, their trials by state and their best trial."""

from __future__ import annotations

from collections import Counter
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from hpo.results.disclosed import trial_speaker_norm
from hpo.results.edges import space_checks
from hpo.results.honest import best_selection
from hpo.study.storage import load_study, open_storage, study_names
from hpo.trial.metrics import cv_value


def study_status(storage_url: str, name: str | None = None) -> list[dict[str, Any]]:
    """One JSON-ready summary per study (or just ``name``, which must exist)."""
    storage = open_storage(storage_url, create=False)
    names = [name] if name else study_names(storage)
    out = []
    for n in names:
        study = load_study(storage, n)
        trials = study.get_trials(deepcopy=False)
        states = Counter(t.state.name for t in trials)
        attrs = study.user_attrs
        metric = attrs.get("metric", "value")
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = None
        if complete:
            bt = study.best_trial
            best = {
                "number": bt.number,
                "value": bt.value,
                "label": cv_value(bt, metric).label,  # "mean over 6/6 folds"
                "params": bt.params,
                # What the score's per-speaker statistics came from: part of what it means.
                "speaker_norm": _norm(attrs, bt),
                "fold_scores": {
                    m: bt.user_attrs.get(f"fold_{m}") for m in ("accuracy", "uar", "macro_f1")
                },
                # Best of N on the folds that chose it; the nested estimate or its command.
                "selection": best_selection(storage_url, study),
            }
        out.append(
            {
                "study": n,
                "kind": attrs.get("kind"),
                "metric": metric,
                "direction": study.direction.name.lower(),
                "synthetic_corpus": attrs.get("corpus_synthetic"),
                "trials": len(trials),
                "states": {s.name: states.get(s.name, 0) for s in TrialState},
                "best": best,
                "best_pruned": best_pruned(trials, metric, study.direction.name == "MAXIMIZE"),
                # Best value at the edge of a range, or a plateau of tied trials.
                **space_checks(
                    complete, study.best_trial if complete else None, metric, n, storage_url
                ),
            }
        )
    return out


def _norm(attrs: dict[str, Any], trial: FrozenTrial) -> str | None:
    norm = trial_speaker_norm(attrs, trial)
    return norm.short() if norm else None


def best_pruned(trials: list[FrozenTrial], metric: str, maximize: bool) -> dict | None:
    """The pruned trial with the best partial mean: the most promising trial the pruner
    stopped. Its ``partial_mean`` (never ``value``: Optuna's value of a pruned trial is its
    last report, one fold's score under Wilcoxon) is over the folds it ran, named in
    ``label`` ("partial mean over 2/6 folds")."""
    pruned = [cv_value(t, metric) for t in trials if t.state == TrialState.PRUNED]
    scored = [v for v in pruned if v.value is not None]
    if not scored:
        return None
    pick = (max if maximize else min)(scored, key=lambda v: v.value)
    params = next(t.params for t in trials if t.number == pick.number)
    return {**pick.as_dict(), "params": params}
