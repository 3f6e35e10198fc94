"""What every w2v fold shares at the trial level, for fine-tuning and probe alike: the
epoch stage's screen, the learned layer mix, and turning a diverged, screened-out or
out-of-memory fold into a PRUNED trial with its reason; epochs trained are counted."""

from __future__ import annotations

from collections.abc import Callable

import optuna
import torch

from hpo.config.study import StudySpec
from hpo.corpus.folds import Fold
from hpo.kinds.w2v.errors import Diverged, Screened
from hpo.trial.screening import EpochScreen


class FoldGuard:
    def __init__(self, trial: optuna.Trial, spec: StudySpec) -> None:
        self.trial, self.spec, self.epochs_run = trial, spec, 0.0
        self.weights: dict[str, list[float]] = {}

    def screen(self, fold: Fold) -> EpochScreen | None:
        p = self.spec.pruner
        if fold.index != p.screen_fold:
            return None
        # With the stage off the curve is still kept: `prune_bench.py` replays it.
        return EpochScreen(
            self.trial,
            p.epoch_warmup,
            p.epoch_percentile,
            p.epoch_startup_trials,
            self.spec.objective.direction == "maximize",
            decide=p.epoch_stage,
        )

    def layer_weights(self, fold: Fold, pooler: torch.nn.Module) -> None:
        """The layer mix ``layer_weighted`` learned, per fold (for the report)."""
        if hasattr(pooler, "weights"):
            w = pooler.weights().detach().cpu()
            self.weights[str(fold.index)] = [round(float(v), 5) for v in w]
            self.trial.set_user_attr("layer_weights", self.weights)

    def run(self, fold: Fold, train: Callable[[], tuple[dict, float]]) -> dict:
        """``train()`` returns (scores, epochs); an early stop ends the trial PRUNED."""
        t = self.trial
        try:
            scores, epochs = train()
        except Screened as e:
            self._count(e.epochs)
            t.set_user_attr("pruned_reason", str(e))
            t.set_user_attr("pruned_at", {"fold": fold.index, "epoch": e.epochs})
            raise optuna.TrialPruned(str(e)) from None
        except Diverged as e:
            t.set_user_attr("pruned_reason", f"diverged: {e}")
            raise optuna.TrialPruned(f"diverged: {e}") from None
        except torch.cuda.OutOfMemoryError:
            t.set_user_attr("pruned_reason", f"GPU out of memory at fold {fold.index}")
            raise optuna.TrialPruned("GPU out of memory") from None
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        self._count(epochs)
        return scores

    def _count(self, epochs: float) -> None:
        self.epochs_run += epochs
        self.trial.set_user_attr("epochs_run", self.epochs_run)
