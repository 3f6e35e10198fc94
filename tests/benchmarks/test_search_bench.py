"""``benchmarks/search_bench.py``: its memoised objective is the live one, and its quick run
measures what it says (grid points, folds, best-so-far) for every strategy."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.kinds.svm.objective import SvmObjective
from tests.helpers import ONE_FEATURE_SET, ROOT, write_spec

QUICK = ["grid", "random", "tpe", "hpo", "x4-liar"]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "search_bench", ROOT / "benchmarks" / "search_bench.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["search_bench"] = mod  # its dataclasses resolve their annotations there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def study_file(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # librosa only: the session corpus has its cache (and must not gain others).
    dst = tmp_path_factory.mktemp("search") / "svm.toml"
    return write_spec(dst, data={"corpus": str(prepared)}, space=ONE_FEATURE_SET)


@pytest.fixture(scope="module")
def quick(prepared: Path, study_file: Path) -> tuple:
    bench = _bench()
    argv = ["--quick", "--corpus", str(prepared), "--study", str(study_file)]
    return bench, bench.main([*argv, "--strategies", ",".join(QUICK)])


def _values(study: optuna.Study) -> list[tuple]:
    return [
        (t.state, t.value, t.user_attrs["fold_uar"], t.user_attrs["fold_accuracy"])
        for t in study.trials
    ]


CONFIGS = [
    {"kernel": "linear", "C": 0.7},
    {"kernel": "rbf", "C": 12.0, "gamma": 0.3},
    {"kernel": "poly", "C": 3.0, "gamma": 0.05, "degree": 2, "coef0": 0.4},
    {"kernel": "rbf", "C": 12.0, "gamma": 0.3, "speaker_norm": "off"},
]


def test_memoised_objective_gives_exactly_the_live_values(prepared: Path, study_file: Path):
    bench = _bench()
    spec = load_spec(study_file)
    corpus = load_corpus(prepared)
    configs = [{"feature_set": "librosa", "speaker_norm": "transductive", "select_k": "all", **c}
               for c in CONFIGS]  # fmt: skip

    def run(objective) -> list[tuple]:
        study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
        for c in configs:
            study.enqueue_trial(c)
        study.optimize(objective, n_trials=len(configs))
        return _values(study)

    live = run(SvmObjective(spec, corpus))
    assert len({v for _, v, _, _ in live}) > 1  # the configs differ: a constant would pass
    memo = bench.Memo()
    objective = bench.memo_objective(spec, corpus, memo)
    first = run(objective)
    fitted = memo.live
    again = run(objective)
    # Every fold was fitted once, then answered from memory with the live scores.
    assert fitted == len(configs) * len(objective.folds) and memo.live == fitted
    assert first == live and again == live


def test_quick_bench_measures_every_strategy(quick: tuple) -> None:
    bench, out = quick
    n, seeds, n_folds = 12, 2, out["n_folds"]
    summary, results = out["summary"], out["results"]
    assert list(summary["rows"]) == QUICK
    for name in QUICK:
        row = summary["rows"][name]
        assert list(row["best_after"]) == [10, n]
        for run, b10, bn in zip(results[name], *row["best_after"].values(), strict=True):
            assert len(run.values) == n and len(run.folds) == n
            # The best so far never falls, and is the best complete trial's value.
            assert b10 <= bn == max(v for v in run.values if v is not None)
        assert len(row["folds"]) == seeds and len(row["wall"]) == seeds
    # Unpruned strategies run every fold of every trial; pruning only ever runs fewer.
    for name in ("grid", "random", "tpe"):
        assert summary["rows"][name]["folds"] == [n * n_folds] * seeds
    for name in ("hpo", "x4-liar"):
        for run in results[name]:
            pruned = [t for t in run.study.trials if t.state == TrialState.PRUNED]
            assert sum(run.folds) == n * n_folds - sum(n_folds - f for f in run.folds)
            assert sum(run.folds) <= n * n_folds
            assert all(f < n_folds for f, t in zip(run.folds, run.study.trials, strict=True)
                       if t.state == TrialState.PRUNED)  # fmt: skip
            assert all(v is None for v, t in zip(run.values, run.study.trials, strict=True)
                       if t in pruned)  # fmt: skip
    # The within-0.5-point column counts to the best any strategy found: some run got there.
    assert any(t is not None for r in summary["rows"].values() for t in r["to_near_best"])
    assert (
        summary["reference"] == "random"
        and summary["reference_best"] > 0
        and 0 < summary["hpo_fold_share"] <= 1
    )


def test_grid_trials_are_the_grid_points(quick: tuple) -> None:
    bench, out = quick
    points = bench._grid_points(out["spec"], 12)
    assert len(points) == 12  # 4 kernels x 3 values of C
    for run in out["results"]["grid"]:
        # A trial's params are the active ones of its grid point (gamma only for rbf...).
        seen = [(p["kernel"], p["C"]) for p in run.params]
        assert sorted(seen) == sorted((p["kernel"], p["C"]) for p in points)
        for p in run.params:
            assert p["feature_set"] == "librosa" and p["select_k"] == "all"
            assert p.get("gamma", 1.0) == 1.0 and p.get("degree", 3) == 3
    # Two seeds visit the grid in different orders.
    a, b = (r.params for r in out["results"]["grid"])
    assert a != b


def test_trials_to_and_best_after_skip_pruned_trials() -> None:
    bench = _bench()
    values = [0.5, None, 0.7, 0.65, 0.8]  # None: a pruned or failed trial
    assert bench.best_after(values, 2) == 0.5 and bench.best_after(values, 5) == 0.8
    assert bench.trials_to(values, 0.7) == 3 and bench.trials_to(values, 0.81) is None
    assert math.isnan(bench.best_after([None], 1))
