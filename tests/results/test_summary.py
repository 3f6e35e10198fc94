"""The report's numbers on tiny fixed inputs: the bootstrap resamples speakers, chance levels
and per-label scores are what scikit-learn computes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
)

from hpo.results.summary import (
    bootstrap_speakers,
    chance_levels,
    pairs_of,
    per_label,
    percentile_interval,
    pooled_scores,
)


def test_the_bootstrap_resamples_speakers_with_all_their_clips() -> None:
    # Speaker "a": 8 clips, all right; speaker "b": 2 clips, all wrong. Drawing two speakers
    # with replacement gives aa, ab/ba or bb: accuracy 1, 0.8 or 0, nothing else. Drawing
    # clips would give every value between, tightly around 0.8.
    y_true = np.array([0, 1] * 4 + [0, 1])
    y_pred = np.concatenate([y_true[:8], 1 - y_true[8:]])
    speakers = np.array(["a"] * 8 + ["b"] * 2)
    boot = bootstrap_speakers(y_true, y_pred, speakers, n_classes=2, resamples=400, seed=0)
    assert set(np.round(boot["accuracy"], 6)) == {0.0, 0.8, 1.0}
    share = {v: np.mean(np.isclose(boot["accuracy"], v)) for v in (0.0, 0.8, 1.0)}
    assert share[0.8] == pytest.approx(0.5, abs=0.08)  # ab or ba: half the draws
    pooled = pooled_scores(y_true, y_pred, 2)["accuracy"]
    lo, hi = percentile_interval(boot["accuracy"])
    assert pooled == pytest.approx(0.8) and lo <= pooled <= hi and (lo, hi) == (0.0, 1.0)
    again = bootstrap_speakers(y_true, y_pred, speakers, n_classes=2, resamples=400, seed=0)
    assert np.array_equal(again["accuracy"], boot["accuracy"])  # seeded


def test_pooled_and_per_label_scores_are_scikit_learns() -> None:
    cm = np.array([[5, 1, 0], [2, 2, 0], [0, 3, 0]])  # class 2 never predicted
    y_true, y_pred = pairs_of(cm)
    pooled = pooled_scores(y_true, y_pred, 3)
    assert pooled["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert pooled["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    f1 = f1_score(y_true, y_pred, average="macro", labels=[0, 1, 2], zero_division=0)
    assert pooled["macro_f1"] == pytest.approx(f1)
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], zero_division=0)
    rows = per_label(cm, ["x", "y", "z"])
    assert [row[:2] for row in rows] == [("x", 6), ("y", 4), ("z", 3)]
    assert [row[2] for row in rows] == pytest.approx(list(r))
    assert [row[3] for row in rows[:2]] == pytest.approx(list(p[:2]))
    assert rows[2][3] is None  # no clip predicted as z: no precision, not 0
    assert [row[4] for row in rows] == pytest.approx(list(f))


def test_chance_levels_are_the_scores_of_a_majority_predictor() -> None:
    y_true = np.array([0] * 6 + [1] * 2 + [2] * 2)
    majority = np.zeros_like(y_true)
    c = chance_levels(np.bincount(y_true), ["neutral", "sad", "angry"])
    assert c.majority_label == "neutral"
    assert c.majority["accuracy"] == pytest.approx(accuracy_score(y_true, majority))
    assert c.majority["uar"] == pytest.approx(balanced_accuracy_score(y_true, majority))
    assert c.majority["macro_f1"] == pytest.approx(
        f1_score(y_true, majority, average="macro", zero_division=0)
    )
    assert c.uniform["accuracy"] == pytest.approx(1 / 3) and c.uniform["uar"] == pytest.approx(
        1 / 3
    )
