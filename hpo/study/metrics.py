"""Scores of one validation fold: accuracy, unweighted average recall, macro-F1."""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "uar", "macro_f1")


def fold_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """The three metrics of one fold, plus its confusion matrix (rows: true class)."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

    labels = list(range(n_classes))
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        # UAR: recall averaged over the classes present, the usual SER headline metric.
        "uar": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
