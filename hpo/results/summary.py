"""The numbers ``hpo report`` leads with, for one trial: scores per fold and pooled over all
clips, a 95% interval from a bootstrap over speakers, per-label scores, the confusion matrix
and chance levels. Pure numbers, no formatting: ``hpo.results.report_tables`` turns them
into the tables every format renders.

Pooled scores use ``hpo.trial.metrics.fold_scores`` on all the trial's validation clips at
once, so a pooled UAR or macro-F1 is defined exactly as a fold's is. Where a trial kept no
per-clip predictions (an hpo before ``clip_predictions``), its confusion matrix summed over
folds gives the same pooled and per-label numbers (they depend on the counts alone); only
the bootstrap needs to know each clip's speaker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpo.errors import HpoError
from hpo.trial.metrics import METRICS, fold_scores
from hpo.trial.predictions import of_trial

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
METRIC_NAMES = {"accuracy": "accuracy", "uar": "UAR", "macro_f1": "macro-F1"}


@dataclass
class FoldRow:
    index: int
    speakers: list[Any]
    clips: int | None
    scores: dict[str, float | None]


@dataclass
class Chance:
    majority_label: str
    majority: dict[str, float]
    uniform: dict[str, float]


@dataclass
class TrialSummary:
    """Everything the report says about one trial's validation results."""

    number: int
    partial: bool  # a pruned trial: the folds it ran only
    labels: list[str]
    folds: list[FoldRow]
    confusion: np.ndarray | None = None  # summed over folds; rows: true class
    pooled: dict[str, float] | None = None
    interval: dict[str, tuple[float, float]] | None = None  # 95% bootstrap over speakers
    speakers: int | None = None  # how many the bootstrap resampled
    per_label: list[tuple[str, int, float | None, float | None, float | None]] = field(
        default_factory=list
    )  # label, support, recall, precision, F1
    chance: Chance | None = None
    notes: list[str] = field(default_factory=list)  # what is missing, and why

    def fold_mean_std(self, metric: str) -> tuple[float | None, float | None]:
        """Mean and sample standard deviation (ddof=1) over the folds that ran."""
        vals = [f.scores[metric] for f in self.folds if f.scores.get(metric) is not None]
        if not vals:
            return None, None
        return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else None


def pairs_of(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class ids, one pair per clip counted in confusion matrix ``cm``."""
    n = len(cm)
    cells = np.repeat(np.arange(n * n), np.asarray(cm, dtype=np.int64).ravel())
    return cells // n, cells % n


def pooled_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, UAR and macro-F1 over all the clips at once (``fold_scores``' definitions)."""
    s = fold_scores(y_true, y_pred, n_classes)
    return {m: s[m] for m in METRICS}


def per_label(cm: np.ndarray, labels: list[str]) -> list[tuple]:
    """(label, support, recall, precision, F1) per class of the pooled confusion matrix;
    None where a class has no clip (recall) or no prediction (precision)."""
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred = pairs_of(cm)
    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(cm)), zero_division=0
    )
    predicted = np.asarray(cm).sum(0)
    return [
        (
            labels[i],
            int(support[i]),
            float(r[i]) if support[i] else None,
            float(p[i]) if predicted[i] else None,
            float(f[i]) if support[i] else None,
        )
        for i in range(len(cm))
    ]


def chance_levels(support: np.ndarray, labels: list[str]) -> Chance:
    """Two baselines: always predicting the majority class, and guessing each of the K labels
    with probability 1/K (expected values). Both average UAR and macro-F1 over the classes
    present, as the trial's scores do."""
    support = np.asarray(support, dtype=float)
    present = support > 0
    k_present, k = int(present.sum()), len(support)
    share = support / support.sum()
    top = int(np.argmax(support))
    p = float(share[top])
    uniform_f1 = 2 * share * (1 / k) / (share + 1 / k)
    return Chance(
        majority_label=labels[top],
        majority={"accuracy": p, "uar": 1 / k_present, "macro_f1": 2 * p / (1 + p) / k_present},
        uniform={"accuracy": 1 / k, "uar": 1 / k, "macro_f1": float(uniform_f1[present].mean())},
    )


def bootstrap_speakers(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    speakers: np.ndarray,
    n_classes: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, np.ndarray]:
    """Each metric's pooled value on ``resamples`` bootstrap samples of the *speakers*: each
    sample draws as many speakers as there are, with replacement, each with all its clips.
    Clips of one speaker are not independent (one voice, one session), so resampling clips
    would make the interval too narrow."""
    rng = np.random.default_rng(seed)
    ids = np.unique(speakers)
    members = [np.flatnonzero(speakers == s) for s in ids]
    out = {m: np.empty(resamples) for m in METRICS}
    for b in range(resamples):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(ids), len(ids))])
        s = fold_scores(y_true[idx], y_pred[idx], n_classes)
        for m in METRICS:
            out[m][b] = s[m]
    return out


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _load_clip_truth(
    attrs: dict[str, Any], data: Path | None, notes: list[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each manifest clip's true class and speaker, from the corpus the study ran on (or
    ``data``); None, with a line in ``notes``, where it is not there or not the same."""
    from hpo.corpus.manifest import load_corpus

    where = data or attrs.get("corpus_path")
    if where is None:
        notes.append("The study does not record its corpus; pass --data DIR for intervals.")
        return None
    try:
        corpus = load_corpus(where)
    except HpoError:
        notes.append(
            f"Corpus not found at {where} (the study's corpus_path): no bootstrap interval; "
            "pass --data DIR to point at the prepared corpus on this machine."
        )
        return None
    if attrs.get("manifest_hash") and corpus.manifest_hash != attrs["manifest_hash"]:
        notes.append(
            f"The corpus at {where} has manifest {corpus.manifest_hash}, the study ran on "
            f"{attrs['manifest_hash']}: its clip indices are not trusted, no bootstrap "
            "interval; pass --data DIR with the study's corpus."
        )
        return None
    return corpus.label_ids, corpus.speakers


def summarize_trial(trial: Any, attrs: dict[str, Any], data: Path | None = None) -> TrialSummary:
    """The :class:`TrialSummary` of a finished ``trial`` of a study with user attributes
    ``attrs``; ``data`` overrides where the study's corpus is."""
    from hpo.trial.notes import class_names

    fold_speakers = attrs.get("fold_actors", {})
    preds = of_trial(trial)
    per_fold = {m: trial.user_attrs.get(f"fold_{m}") or [] for m in METRICS}
    n_folds = max(len(v) for v in per_fold.values())
    folds = [
        FoldRow(
            i,
            list(fold_speakers.get(str(i), [])),
            int((preds.folds == i).sum()) if preds is not None else None,
            {m: per_fold[m][i] if i < len(per_fold[m]) else None for m in METRICS},
        )
        for i in range(n_folds)
    ]
    folds = [f for f in folds if any(v is not None for v in f.scores.values())]
    cm = trial.user_attrs.get("confusion")
    cm = np.asarray(cm, dtype=np.int64) if cm is not None else None
    labels = class_names(len(cm), attrs.get("labels")) if cm is not None else []
    s = TrialSummary(trial.number, trial.state.name == "PRUNED", labels, folds, cm)
    if cm is None:
        s.notes.append(f"Trial #{trial.number} kept no confusion matrix: no pooled scores.")
        return s
    s.pooled = pooled_scores(*pairs_of(cm), len(cm))
    s.per_label = per_label(cm, labels)
    s.chance = chance_levels(cm.sum(1), labels)
    if preds is None:
        s.notes.append(
            f"Trial #{trial.number} kept no per-clip predictions (it was run by an earlier "
            "hpo): pooled and per-label scores come from its confusion matrix summed over "
            "folds; the 95% intervals over speakers need a newer run."
        )
        return s
    _add_interval(s, preds, _load_clip_truth(attrs, data, s.notes))
    return s


def _add_interval(s: TrialSummary, preds: Any, truth: Any) -> None:
    if truth is None:
        return
    label_ids, speakers = truth
    if len(preds.clips) and preds.clips.max() >= len(label_ids):
        s.notes.append("The trial's clip indices exceed the corpus's manifest: no interval.")
        return
    y_true = label_ids[preds.clips]
    boot = bootstrap_speakers(y_true, preds.pred, speakers[preds.clips], len(s.labels))
    s.interval = {m: percentile_interval(v) for m, v in boot.items()}
    s.speakers = len(np.unique(speakers[preds.clips]))
