"""The speaker-fold loop every objective shares: fit, score, report, maybe prune.

A trial's value is the mean over folds of the study's metric. Per-fold scores are stored on
the trial as user attributes (``fold_accuracy``, ``fold_uar``, ``fold_macro_f1``, and the
summed ``confusion`` matrix), so the dashboard and the report need nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna

from hpo.corpus.folds import Fold
from hpo.errors import one_line
from hpo.trial.metrics import METRICS
from hpo.trial.predictions import ATTR as PREDICTIONS
from hpo.trial.predictions import ClipPredictions

FoldFn = Callable[[Fold], dict]


def report_mode(pruner: str) -> str:
    """What to report after each fold: Wilcoxon pairs per-fold scores between trials, the
    other pruners compare running means."""
    return "fold" if pruner == "wilcoxon" else "mean"


def cross_validate(
    trial: optuna.Trial,
    folds: Sequence[Fold],
    fit_and_score: FoldFn,
    metric: str,
    report: str = "fold",
    on_fold: Callable[[int, dict], None] | None = None,
    first_fold: int | None = None,
    labels: Sequence[str] | None = None,
) -> float:
    """Run ``fit_and_score`` on every fold and return the mean of ``metric``.

    Args:
        trial: the Optuna trial (intermediate values go here).
        folds: the folds, validated in order.
        fit_and_score: trains on ``fold.train`` and returns the fold's scores.
        metric: one of ``accuracy``, ``uar``, ``macro_f1``.
        report: ``"fold"`` reports each fold's own score at step = fold index, what the
            Wilcoxon pruner compares between trials; ``"mean"`` reports the running mean,
            what the median pruner needs.
        on_fold: progress hook, called with (fold index, scores).
        first_fold: validate this fold first in every trial (the epoch stage's screening
            fold), the others after it.
        labels: the corpus's label set, naming the confusion matrix's classes in the note.

    Raises:
        optuna.TrialPruned: when the pruner stops the trial after a fold.
    """
    per_fold: dict[str, list[float | None]] = {m: [None] * len(folds) for m in METRICS}
    confusion: np.ndarray | None = None
    kept = ClipPredictions.empty()
    order = list(folds)
    if report == "fold":
        # Wilcoxon pairs folds by id, so order is free; a per-trial order keeps the search
        # from fitting the first folds (the pruner's documented advice).
        np.random.default_rng(trial.number).shuffle(order)
    if first_fold is not None:
        order.sort(key=lambda f: f.index != first_fold)  # stable: the rest keep their order
    for done, fold in enumerate(order, start=1):
        scores = fit_and_score(fold)
        for m in METRICS:
            per_fold[m][fold.index] = round(scores[m], 6)
            # Lists in fold order, None for folds not (yet) evaluated.
            trial.set_user_attr(f"fold_{m}", per_fold[m])
        cm = np.asarray(scores["confusion"])
        confusion = cm if confusion is None else confusion + cm
        trial.set_user_attr("confusion", confusion.tolist())
        if "pred" in scores:  # each fold's, as it ends: a pruned trial keeps what it scored
            kept.add(fold.index, fold.valid, scores["pred"], scores.get("proba"))
            trial.set_user_attr(PREDICTIONS, kept.encode())
        trial.set_user_attr("folds_done", done)
        running = _mean(per_fold[metric])
        if on_fold:
            on_fold(fold.index, scores)
        trial.report(scores[metric] if report == "fold" else running, step=fold.index)
        if done < len(order) and trial.should_prune():
            trial.set_user_attr("pruned_reason", f"pruner stopped it after {done} fold(s)")
            # Optuna keeps the last report as a pruned trial's value (one fold's score under
            # Wilcoxon); the dashboard's trial table shows this beside it, named for what it is.
            trial.set_user_attr(f"partial_mean_{metric}", round(running, 6))
            _note(trial, per_fold, confusion, labels)
            raise optuna.TrialPruned()
    for m in METRICS:
        trial.set_user_attr(f"mean_{m}", _mean(per_fold[m]))
        ran = [v for v in per_fold[m] if v is not None]
        # Sample std (ddof=1): the folds are a sample of speakers, as the report's std is.
        trial.set_user_attr(f"std_{m}", float(np.std(ran, ddof=1)) if len(ran) > 1 else None)
    _note(trial, per_fold, confusion, labels)
    return _mean(per_fold[metric])


def _note(trial: optuna.Trial, per_fold: dict, confusion: np.ndarray | None, labels: Any) -> None:
    """The dashboard's note on the trial: per-fold scores and confusion matrix as tables."""
    if isinstance(trial, optuna.Trial):
        from hpo.trial.notes import annotate_trial

        annotate_trial(trial, per_fold, confusion, labels)


def _mean(values: list[float | None]) -> float:
    return float(np.mean([v for v in values if v is not None]))


class TrialFailed(Exception):
    """A trial that broke on an unexpected error: it ends FAIL (reason in ``fail_reason``)
    and the study goes on. A bug shows in every trial, so the worker stops after a few.
    ``retry``: the cause was outside the trial's parameters (see ``Retryable``), so the
    worker queues the same parameters again."""

    def __init__(self, reason: str, retry: bool = False) -> None:
        super().__init__(reason)
        self.retry = retry


class Retryable(Exception):
    """Raised by a fold when it failed for a cause outside the trial's parameters (a GPU out
    of memory, most often because of a neighbouring trial): the trial ends FAIL with this
    reason and is queued again (up to ``max_retry``) instead of telling the sampler that
    the configuration is bad."""


class CvObjective:
    """The trial flow every study kind shares: sample the space, announce the trial, then
    cross-validate the kind's ``fold_fn``. Subclasses set ``spec``, ``folds`` and
    ``reporter`` and implement ``fold_fn``."""

    spec: Any
    folds: list[Fold]
    reporter: Any = None
    artifacts: Any = None  # where the dashboard's figures go (set by the worker)
    # The corpus's label set, naming the dashboard's confusion matrices (set by the worker;
    # not ``labels``, which kinds use for the clips' class ids).
    label_names: Sequence[str] | None = None

    def fold_fn(self, trial: optuna.Trial, params: dict[str, Any]) -> FoldFn:
        raise NotImplementedError

    def __call__(self, trial: optuna.Trial) -> float:
        from hpo.config.space import suggest
        from hpo.errors import HpoError

        params = suggest(trial, self.spec.space)
        fit_and_score = self.fold_fn(trial, params)
        if self.reporter:
            self.reporter.trial_started(trial.number, params, len(self.folds))
        try:
            value = cross_validate(
                trial,
                self.folds,
                fit_and_score,
                self.spec.objective.metric,
                report=report_mode(self.spec.pruner.type),
                on_fold=self.reporter.fold_done if self.reporter else None,
                first_fold=self.spec.pruner.screen_fold if self.spec.pruner.epoch_stage else None,
                labels=self.label_names,
            )
            if self.artifacts is not None:
                from hpo.trial.notes import attach_confusion_if_best

                attach_confusion_if_best(trial, value, self.artifacts, self.label_names)
            return value
        except (optuna.TrialPruned, HpoError, KeyboardInterrupt, MemoryError):
            raise
        except Retryable as e:
            reason = str(e) or type(e).__name__
            trial.set_user_attr("fail_reason", reason)
            if self.reporter:
                self.reporter.log(f"trial {trial.number} failed: {reason}")
            raise TrialFailed(reason, retry=True) from e
        except Exception as e:
            reason = one_line(e)
            trial.set_user_attr("fail_reason", reason)
            if self.reporter:
                self.reporter.log(f"trial {trial.number} failed: {reason}")
            raise TrialFailed(reason) from e
