from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.trial.cv import CvObjective, cross_validate
from tests.helpers import write_spec


def test_folds_on_the_corpus_never_share_an_actor(prepared: Path) -> None:
    corpus = load_corpus(prepared)
    actors = corpus.speakers
    folds = corpus_folds(corpus, 6)
    seen: list[int] = []
    for f in folds:
        assert not set(actors[f.train]) & set(actors[f.valid])
        assert len(f.train) + len(f.valid) == len(corpus.clips)
        assert set(f.valid_actors) == set(actors[f.valid])
        seen += list(f.valid_actors)
    assert sorted(seen) == list(range(1, 25))  # every actor validated exactly once


def _fake_scores(acc: float) -> dict:
    return {"accuracy": acc, "uar": acc, "macro_f1": acc, "confusion": [[1]]}


def test_wilcoxon_prunes_a_clearly_worse_trial_and_records_partial_folds(prepared: Path) -> None:
    folds = corpus_folds(load_corpus(prepared), 6)
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.WilcoxonPruner(p_threshold=0.1)
    )
    good = [0.80, 0.82, 0.78, 0.85, 0.79, 0.81]

    def objective(trial: optuna.Trial) -> float:
        bad = trial.number > 0
        return cross_validate(
            trial,
            folds,
            lambda f: _fake_scores(good[f.index] - 0.4 * bad),
            "accuracy",
            report="fold",
        )

    study.optimize(objective, n_trials=2)
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert first.value == pytest.approx(np.mean(good))
    assert first.user_attrs["fold_accuracy"] == pytest.approx(good)
    assert second.state == optuna.trial.TrialState.PRUNED
    done = second.user_attrs["folds_done"]
    assert done < 6
    assert sum(v is not None for v in second.user_attrs["fold_accuracy"]) == done
    assert "pruned_reason" in second.user_attrs
    # The dashboard shows a pruned trial's mean over the folds it ran, named as such.
    ran = [v for v in second.user_attrs["fold_accuracy"] if v is not None]
    assert second.user_attrs["partial_mean_accuracy"] == pytest.approx(np.mean(ran))


class _FakeObjective(CvObjective):
    """The shared trial flow with a fold function that returns fixed scores."""

    def __init__(self, spec, folds, vals) -> None:
        self.spec, self.folds, self.vals = spec, folds, vals

    def fold_fn(self, trial, params):
        return lambda f: _fake_scores(self.vals[f.index])


@pytest.mark.parametrize("pruner", ["median", "wilcoxon"])
def test_the_study_pruner_decides_what_each_fold_reports(
    prepared: Path, tmp_path: Path, pruner: str
) -> None:
    spec = load_spec(write_spec(tmp_path / "s.toml", pruner={"type": pruner}))
    folds = corpus_folds(load_corpus(prepared), 6)
    vals = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    study = optuna.create_study(direction="maximize")
    study.optimize(_FakeObjective(spec, folds, vals), n_trials=1)
    inter = study.trials[0].intermediate_values
    if pruner == "median":
        # The median pruner compares running means at the same step: report those.
        expected = [float(np.mean(vals[: i + 1])) for i in range(6)]
        # Folds run in index order for it, so step i holds the mean of folds 0..i.
        assert [round(inter[i], 4) for i in range(6)] == [round(v, 4) for v in expected]
    else:
        # Wilcoxon pairs each fold's own score with the best trial's on that fold.
        assert [round(inter[i], 4) for i in range(6)] == vals
