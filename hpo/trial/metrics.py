"""Scores of one validation fold: accuracy, unweighted average recall, macro-F1.

Computed from the confusion matrix with numpy: the probe evaluates every epoch of every
fold, and scikit-learn's input validation made that 35 ms a call. ``tests/study/
test_metrics.py`` checks the three against scikit-learn's own functions.
"""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "uar", "macro_f1")


def fold_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """The three metrics of one fold, plus its confusion matrix (rows: true class)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    true, pred, hit = cm.sum(1), cm.sum(0), np.diag(cm)
    present = true > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(present, hit / np.maximum(true, 1), 0.0)
        precision = np.where(pred > 0, hit / np.maximum(pred, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "accuracy": float(hit.sum() / max(len(y_true), 1)),
        # UAR: recall averaged over the classes present, the usual SER headline metric
        # (scikit-learn's balanced accuracy).
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        # Macro-F1 over all classes, 0 for a class never predicted nor present.
        "macro_f1": float(f1.mean()),
        "confusion": cm.tolist(),
    }
