"""``benchmarks/prune_bench.py``'s best value is a best CV mean: pruned trials left out."""

from __future__ import annotations

import importlib.util
import math

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tests.helpers import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location(
        "prune_bench", ROOT / "benchmarks" / "prune_bench.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prune_bench_best_ignores_pruned_trials() -> None:
    bench = _bench()
    study = optuna.create_study(direction="maximize")
    dist = {"c": FloatDistribution(0.1, 10.0)}
    for state, value in (
        (TrialState.COMPLETE, 0.7),
        (TrialState.PRUNED, 0.9),
        (TrialState.COMPLETE, 0.8),
        (TrialState.FAIL, None),
    ):
        study.add_trial(
            create_trial(state=state, value=value, params={"c": 1.0}, distributions=dist)
        )
    # The pruned trial's 0.9 is one fold's score (its last report), not a CV mean.
    values = bench.cv_means(study.trials)
    assert values == [0.7, None, 0.8, None]
    assert bench.best(values) == 0.8
    assert math.isnan(bench.best([None, None]))
