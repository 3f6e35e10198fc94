"""Scores of one validation fold: accuracy, unweighted average recall, macro-F1; and what a
finished trial's value stands for (a CV mean, or a pruned trial's partial mean).

Computed from the confusion matrix with numpy: the probe evaluates every epoch of every
fold, and scikit-learn's input validation made that 35 ms a call. ``tests/trial/
test_metrics.py`` checks the three against scikit-learn's own functions.

Which classes UAR and macro-F1 average over: the classes present in the fold's validation
clips, for both. A class with no validation clip in a fold has no recall (0 of 0 clips), so
UAR can only average over the present ones; macro-F1 over the corpus's full label set would
count such a class as F1 = 0 (or 1, by another convention) and so score the split, not the
model, and the two metrics of one fold would not be comparable. Predictions of an absent
class still cost: each is a miss of the clip's true class, whose recall and F1 drop.
Where every fold holds every class (RAVDESS, EmoDB, CREMA-D speaker folds), the choice
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

METRICS = ("accuracy", "uar", "macro_f1")


def fold_scores(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, proba: np.ndarray | None = None
) -> dict:
    """The three metrics of one fold, plus its confusion matrix (rows: true class) and the
    per-clip predictions (``pred``, and ``proba`` where given) in ``y_true``'s order, which
    the trial keeps (``hpo.trial.predictions``).

    UAR and macro-F1 both average over the classes present in ``y_true`` (see the module's
    docstring): scikit-learn's ``balanced_accuracy_score`` and ``f1_score(average="macro",
    labels=np.unique(y_true), zero_division=0)``.
    """
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
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "confusion": cm.tolist(),
        "pred": y_pred,
        **({"proba": np.asarray(proba, dtype=np.float32)} if proba is not None else {}),
    }


@dataclass(frozen=True)
class CvValue:
    """What a finished trial's value is: the mean of ``metric`` over the folds it ran.

    A complete trial ran every fold: ``value`` is its CV mean (Optuna's value). A pruned
    trial's Optuna value is its last intermediate report (one fold's score under the
    Wilcoxon pruner, which reports each fold at step = fold index in shuffled order), never
    a CV mean: ``value`` here is the mean over the folds it did run, ``partial`` is True.
    """

    number: int
    value: float | None  # None: a pruned trial stopped before any fold ended
    folds_run: int | None  # None: the trial kept no per-fold scores (not an hpo trial)
    folds: int | None
    partial: bool

    @property
    def label(self) -> str:
        """``mean over 6/6 folds`` or ``partial mean over 2/6 folds``, for tables."""
        if self.folds is None:
            return "partial value" if self.partial else "mean"
        what = "partial mean" if self.partial else "mean"
        return f"{what} over {self.folds_run}/{self.folds} folds"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; the value's key says which it is (``mean`` or ``partial_mean``)."""
        key = "partial_mean" if self.partial else "mean"
        return {
            "number": self.number,
            key: self.value,
            "folds_run": self.folds_run,
            "folds": self.folds,
            "label": self.label,
        }


def cv_value(trial: FrozenTrial, metric: str) -> CvValue:
    """The value of a COMPLETE or PRUNED trial as :class:`CvValue`."""
    per_fold = trial.user_attrs.get(f"fold_{metric}")
    ran = [v for v in per_fold if v is not None] if per_fold else []
    folds = len(per_fold) if per_fold else None
    folds_run = len(ran) if per_fold else None
    if trial.state == TrialState.COMPLETE:
        return CvValue(trial.number, trial.value, folds_run, folds, partial=False)
    value = float(np.mean(ran)) if ran else None
    return CvValue(trial.number, value, folds_run, folds, partial=True)
