"""What every w2v fold shares at the trial level, for fine-tuning and probe alike: the
epoch stage's screen, the learned layer mix, turning a diverged or screened-out fold into
a PRUNED trial with its reason and an out-of-memory fold into a retried failure, and
freeing the fold's memory once its model is gone; epochs trained are counted."""

from __future__ import annotations

import gc
from collections.abc import Callable

import optuna
import torch

from hpo.config.study import StudySpec
from hpo.corpus.folds import Fold
from hpo.kinds.w2v.errors import Diverged, Screened
from hpo.trial.cv import Retryable
from hpo.trial.screening import EpochScreen, first_judged_epoch


def release_memory() -> None:
    """Give the GPU memory of models no longer referenced back to the driver, so that a
    neighbouring trial on the same GPU can use it: collect first (cycles in a Trainer keep a
    model alive until then), since empty_cache frees only blocks no tensor holds. On a CPU
    there is nothing to give back, and a full collection costs most of a probe's fold."""
    if torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


def screen_start(spec: StudySpec) -> int:
    """The first epoch of the screening fold that the epoch stage judges: not before every
    trial's warm-up is over, the longest the space can draw (or the fixed one). The
    backbone's warm-up follows the head-only phase: it ends after ``h + w (1 - h)`` of the
    updates, the most for the largest of each; and when epochs are searched, the longest
    run's warm-up ends last."""
    t = spec.settings.training
    w = _largest(spec, "warmup_ratio", t.warmup_ratio)
    h = _largest(spec, "head_only_ratio", t.head_only_ratio) if spec.settings.model.finetune else 0
    epochs = _largest(spec, "epochs", t.epochs)
    return first_judged_epoch(spec.pruner.epoch_warmup, h + w * (1 - h), epochs)


def _largest(spec: StudySpec, name: str, fixed: float) -> float:
    """The largest value ``[space.NAME]`` can draw, or the fixed setting when not searched."""
    for param in spec.space:
        if param.name == name:
            d = param.distribution
            return float(max(d.choices) if hasattr(d, "choices") else d.high)
    return float(fixed)


class FoldGuard:
    """One trial's folds. ``trial`` is a study's trial, or a ``FixedTrial`` for a refit
    (``hpo nested``'s outer fold): a refit is trained in full, never screened, since the
    stage would judge it against the search's own trials."""

    def __init__(self, trial: optuna.Trial | optuna.trial.FixedTrial, spec: StudySpec) -> None:
        self.trial, self.spec, self.epochs_run = trial, spec, 0.0
        self.weights: dict[str, list[float]] = {}

    def screen(self, fold: Fold) -> EpochScreen | None:
        p = self.spec.pruner
        if fold.index != p.screen_fold or not isinstance(self.trial, optuna.Trial):
            return None
        # With the stage off the curve is still kept: `prune_bench.py` replays it.
        return EpochScreen(
            self.trial,
            screen_start(self.spec),
            p.epoch_percentile,
            p.epoch_startup_trials,
            self.spec.objective.direction == "maximize",
            decide=p.epoch_stage,
        )

    def layer_weights(self, fold: Fold, mix: torch.nn.Module | None) -> None:
        """The layer mix (``probe_layer = "weighted"``) learned, per fold (for the report);
        ``mix`` is None when the model reads one layer."""
        if mix is not None:
            w = mix.weights().detach().cpu()
            self.weights[str(fold.index)] = [round(float(v), 5) for v in w]
            self.trial.set_user_attr("layer_weights", self.weights)

    def run(self, fold: Fold, train: Callable[[], tuple[dict, float]]) -> dict:
        """``train()`` builds the fold's model, trains it and returns (scores, epochs); it
        must hold the only references to the model, so that the model is gone, and its
        memory freed, before this returns or raises.

        Raises:
            optuna.TrialPruned: the fold diverged or the epoch stage stopped it.
            Retryable: the GPU ran out of memory (most often because of a neighbour).
        """
        try:
            outcome = self._outcome(fold, train)
        finally:
            release_memory()
        if isinstance(outcome, BaseException):
            # Raised out here, not in an except block: no traceback of the failed fold (its
            # frames hold the model) is chained to it and kept alive.
            raise outcome
        scores, epochs = outcome
        self._count(epochs)
        return scores

    def _outcome(
        self, fold: Fold, train: Callable[[], tuple[dict, float]]
    ) -> tuple[dict, float] | BaseException:
        t = self.trial
        try:
            return train()
        except Screened as e:
            self._count(e.epochs)
            t.set_user_attr("pruned_reason", str(e))
            t.set_user_attr("pruned_at", {"fold": fold.index, "epoch": e.epochs})
            return optuna.TrialPruned(str(e))
        except Diverged as e:
            t.set_user_attr("pruned_reason", f"diverged: {e}")
            return optuna.TrialPruned(f"diverged: {e}")
        except torch.cuda.OutOfMemoryError:
            return Retryable(f"GPU out of memory at fold {fold.index}")

    def _count(self, epochs: float) -> None:
        self.epochs_run += epochs
        self.trial.set_user_attr("epochs_run", self.epochs_run)
