"""Pruning inside a fold: an epoch-level screening stage on the first fold.

A fold of wav2vec2-base takes minutes on a GPU; the fold-level pruners can only stop a
trial after whole folds. With ``[pruner] epoch_stage = true`` every trial trains the same
*screening fold* first (fold ``screen_fold``, the others follow in the trial's shuffled
order) and, after each epoch from ``epoch_warmup`` on, compares its validation score with
the other trials' scores at the same epoch of the same fold. Below the
``epoch_percentile``-th percentile of at least ``epoch_startup_trials`` of them, the trial
stops there and ends PRUNED, with the reason and the epoch recorded.

Why not ``trial.report`` per epoch: the Wilcoxon pruner pairs a trial's *fold* scores with
the best trial's, by step; epoch values on the same steps would break that pairing. The
epoch curve is kept in the trial's ``screen_curve`` attribute instead, and decided on
here, so fold-level pruning stays exactly as it was. A screened-out trial is PRUNED, so
the best trial is still one scored on every fold.
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import TrialState

CURVE = "screen_curve"


class EpochScreen:
    """The screening decision for one trial's first fold."""

    def __init__(
        self,
        trial: optuna.Trial,
        warmup: int,
        percentile: float,
        startup_trials: int,
        maximize: bool = True,
    ) -> None:
        self.trial = trial
        self.warmup, self.percentile, self.startup = warmup, percentile, startup_trials
        self.maximize = maximize
        self.curve: list[float] = []

    def _others_at(self, epoch: int) -> list[float]:
        done = self.trial.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
        )
        return [
            t.user_attrs[CURVE][epoch - 1]
            for t in done
            if len(t.user_attrs.get(CURVE, ())) >= epoch
        ]

    def after_epoch(self, epoch: int, value: float) -> str | None:
        """Record ``value`` for ``epoch`` (1-based); a reason to stop, or None to go on."""
        self.curve.append(float(value))
        self.trial.set_user_attr(CURVE, self.curve)
        if epoch < self.warmup:
            return None
        others = self._others_at(epoch)
        if len(others) < self.startup:
            return None
        q = self.percentile if self.maximize else 100 - self.percentile
        bar = float(np.percentile(others, q))
        worse = value < bar if self.maximize else value > bar
        if not worse:
            return None
        return (
            f"epoch stage: {value:.3f} after epoch {epoch} of the screening fold, below the "
            f"{self.percentile:g}th percentile ({bar:.3f}) of {len(others)} trials"
        )
