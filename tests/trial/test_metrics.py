from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

from hpo.trial.metrics import cv_value, fold_scores


@pytest.mark.parametrize("seed", range(20))
def test_fold_scores_equal_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    # Some classes absent from the truth, some never predicted: the edge cases.
    y_true = rng.choice(rng.permutation(8)[: int(rng.integers(2, 9))], n)
    y_pred = rng.choice(rng.permutation(8)[: int(rng.integers(1, 9))], n)
    s = fold_scores(y_true, y_pred, 8)
    assert s["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    assert s["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    # Both average over the classes present in the fold's validation clips.
    present = np.unique(y_true)
    f1 = f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    assert s["macro_f1"] == pytest.approx(f1)
    assert s["confusion"] == confusion_matrix(y_true, y_pred, labels=list(range(8))).tolist()


def test_a_fold_without_a_class_averages_uar_and_macro_f1_over_the_same_classes() -> None:
    # Class 2 has no validation clip in this fold, and is predicted once.
    s = fold_scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2]), n_classes=3)
    # Recall: class 0 1/2, class 1 1/2; class 2 has none (0 of 0 clips).
    assert s["uar"] == pytest.approx(0.5)
    # F1: class 0 2/3 (precision 1, recall 1/2), class 1 1/2; class 2 left out as in UAR
    # (over all three labels it would be (2/3 + 1/2 + 0) / 3 = 0.389).
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert s["accuracy"] == pytest.approx(0.5)


def _trial(
    state: TrialState, number: int, value: float | None, folds: list
) -> optuna.trial.FrozenTrial:
    t = create_trial(
        state=state,
        value=value,
        params={"c": 1.0},
        distributions={"c": FloatDistribution(0.1, 10)},
        user_attrs={"fold_accuracy": folds},
        intermediate_values={i: v for i, v in enumerate(folds) if v is not None},
    )
    t.number = number
    return t


def test_cv_value_of_a_pruned_trial_is_the_mean_of_the_folds_it_ran() -> None:
    # Optuna's value of a pruned trial is its last report: here fold 3's score alone.
    pruned = _trial(TrialState.PRUNED, 4, 0.1, [None, 0.5, None, 0.1, None, None])
    v = cv_value(pruned, "accuracy")
    assert v.partial and v.value == pytest.approx(0.3) and (v.folds_run, v.folds) == (2, 6)
    assert v.label == "partial mean over 2/6 folds"
    assert v.as_dict() == {
        "number": 4,
        "partial_mean": pytest.approx(0.3),
        "folds_run": 2,
        "folds": 6,
        "label": "partial mean over 2/6 folds",
    }
    done = cv_value(_trial(TrialState.COMPLETE, 5, 0.75, [0.5, 1.0]), "accuracy")
    assert not done.partial and done.value == 0.75 and done.label == "mean over 2/2 folds"
    # Stopped inside its first fold (the epoch stage): no fold ended, no value.
    assert cv_value(_trial(TrialState.PRUNED, 6, None, [None, None]), "accuracy").value is None
