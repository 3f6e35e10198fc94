"""``hpo status``: the studies in a storage, their trials by state and their best trial."""

from __future__ import annotations

from collections import Counter
from typing import Any

from optuna.trial import TrialState

from hpo.results.edges import space_checks
from hpo.study.storage import load_study, open_storage, study_names


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
                "params": bt.params,
                "fold_scores": {
                    m: bt.user_attrs.get(f"fold_{m}") for m in ("accuracy", "uar", "macro_f1")
                },
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
                # Best value at the edge of a range, or a plateau of tied trials.
                **space_checks(complete, study.best_trial if complete else None, metric),
            }
        )
    return out
