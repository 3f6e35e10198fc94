"""Pruning inside a fold: an epoch-level screening stage on the first fold.

A fold of wav2vec2-base takes minutes on a GPU; the fold-level pruners can only stop a
trial after whole folds. With ``[pruner] epoch_stage = true`` every trial trains the same
*screening fold* first (fold ``screen_fold``, the others follow in the trial's shuffled
order) and, after each epoch from ``first_judged_epoch`` on, compares its validation score
with the other trials' scores at the same epoch of the same fold. Below the
``epoch_percentile``-th percentile of at least ``epoch_startup_trials`` of them, the trial
stops there and ends PRUNED, with the reason and the epoch recorded.

Why not ``trial.report`` per epoch: the Wilcoxon pruner pairs a trial's *fold* scores with
the best trial's, by step; epoch values on the same steps would break that pairing. The
epoch curve is kept in the trial's ``screen_curve`` attribute instead, and decided on
here, so fold-level pruning stays exactly as it was. A screened-out trial is PRUNED, so
the best trial is still one scored on every fold.

The curve is recorded with the stage off too, so a finished study can be replayed
(``replay``) to see what the stage would have saved and whether it would have kept the best.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.trial import TrialState

CURVE = "screen_curve"


def first_judged_epoch(epoch_warmup: int, longest_warmup_ratio: float, epochs: float) -> int:
    """The first epoch the stage judges: ``epoch_warmup`` at the earliest, and the first
    epoch that ends after the longest warm-up a trial can have (``longest_warmup_ratio`` of
    ``epochs``). Before it, a trial still warming up is compared with trials already at
    their full learning rate: the stage would favour short warm-ups, not better trials."""
    # Rounded: 0.3 x 10 is 3.0000000000000004 in floating point, and the warm-up ends at 3.
    ends = round(longest_warmup_ratio * epochs, 9)
    return max(epoch_warmup, math.floor(ends) + 1)


def verdict(
    value: float,
    epoch: int,
    others: list[float],
    warmup: int,
    percentile: float,
    startup_trials: int,
    maximize: bool = True,
) -> str | None:
    """The stage's rule, for one epoch: a reason to stop, or None to go on.

    ``others``: the other trials' scores at this epoch of the screening fold.
    """
    if epoch < warmup or len(others) < startup_trials:
        return None
    q = percentile if maximize else 100 - percentile
    bar = float(np.percentile(others, q))
    if not (value < bar if maximize else value > bar):
        return None
    return (
        f"epoch stage: {value:.3f} after epoch {epoch} of the screening fold, below the "
        f"{percentile:g}th percentile ({bar:.3f}) of {len(others)} trials"
    )


def replay(
    curves: list[list[float]],
    warmup: int,
    percentile: float,
    startup_trials: int,
    maximize: bool = True,
) -> list[int | None]:
    """What the stage would have done to trials run in this order with these screening-fold
    curves (an empty curve: the trial never reached that fold): per trial, the epoch it
    would have stopped after, or None. Folds are seeded, so for the same parameters in the
    same order this is what a live run with the stage decides, as long as no fold-level
    pruning stopped a trial before its screening fold (live, every trial trains it first).
    """
    seen: list[list[float]] = []
    stops: list[int | None] = []
    for curve in curves:
        stop = None
        for epoch, value in enumerate(curve, start=1):
            others = [c[epoch - 1] for c in seen if len(c) >= epoch]
            if verdict(value, epoch, others, warmup, percentile, startup_trials, maximize):
                stop = epoch
                break
        stops.append(stop)
        seen.append(list(curve[:stop]) if stop else list(curve))
    return stops


class EpochScreen:
    """The screening fold's curve of one trial, and (when ``decide``) the stage's decision."""

    def __init__(
        self,
        trial: optuna.Trial,
        warmup: int,
        percentile: float,
        startup_trials: int,
        maximize: bool = True,
        decide: bool = True,
    ) -> None:
        self.trial = trial
        self.warmup, self.percentile, self.startup = warmup, percentile, startup_trials
        self.maximize, self.decide = maximize, decide
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
        if not self.decide or epoch < self.warmup:
            return None
        return verdict(
            value,
            epoch,
            self._others_at(epoch),
            self.warmup,
            self.percentile,
            self.startup,
            self.maximize,
        )
