from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

from hpo.trial.metrics import fold_scores


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
    f1 = f1_score(y_true, y_pred, labels=list(range(8)), average="macro", zero_division=0)
    assert s["macro_f1"] == pytest.approx(f1)
    assert s["confusion"] == confusion_matrix(y_true, y_pred, labels=list(range(8))).tolist()
