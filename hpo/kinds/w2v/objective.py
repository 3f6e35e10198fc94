"""The ``w2v`` objective: each trial fine-tunes the backbone once per actor fold."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import optuna

from hpo.config.study import StudySpec
from hpo.corpus.audio import TARGET_SR, load_clip
from hpo.corpus.folds import Fold, corpus_folds
from hpo.corpus.manifest import Corpus
from hpo.study.cv import CvObjective, FoldFn
from hpo.study.screening import EpochScreen


def quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_waves(corpus: Corpus, model_name: str, max_samples: int) -> tuple[list[np.ndarray], str]:
    """Every clip, cut and normalised as the checkpoint expects, and a description of that
    preprocessing for the CNN cache key."""
    from hpo.kinds.w2v.backbone import load_feature_extractor, preprocess

    fe = load_feature_extractor(model_name)
    waves = [preprocess(fe, load_clip(str(corpus.clip_path(c))), max_samples) for c in corpus.clips]
    return waves, json.dumps([max_samples, fe.sampling_rate, fe.do_normalize])


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def new_classifier(name: str, model_cfg: dict, seed: int):
    """A fresh classifier; the same seed gives the same head in every trial."""
    from transformers import set_seed

    from hpo.corpus.ravdess import EMOTIONS
    from hpo.kinds.w2v.model import build_classifier

    set_seed(seed)
    return build_classifier(
        name, model_cfg["pooling"], model_cfg["dropout"], model_cfg["mask_time_prob"], len(EMOTIONS)
    )


def build_caches(spec: StudySpec, corpus: Corpus, reporter=None, waves=None):
    """The CNN cache for this study's backbone and corpus (built once, then read)."""
    from hpo.kinds.w2v.cache import load_or_build

    quiet_transformers()
    s = spec.settings
    if not s.training.feature_cache:
        return None
    max_samples = int(s.training.max_seconds * TARGET_SR)
    if waves is None:
        waves = load_waves(corpus, s.model.name, max_samples)
    model = new_classifier(s.model.name, {**vars(s.model)}, s.training.seed)
    dev = device()
    return load_or_build(model.to(dev), waves[0], corpus, waves[1], dev)


class W2vObjective(CvObjective):
    """``trial -> mean CV score``. Clips are loaded once; the CNN cache is read once."""

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        from hpo.kinds.w2v.backbone import resolve_model_name

        quiet_transformers()
        self.spec, self.corpus, self.reporter = spec, corpus, reporter
        self.model_name = spec.settings.model.name
        _, self.random_init = resolve_model_name(self.model_name)
        if reporter and self.random_init:
            reporter.log(
                f"note: model {self.model_name!r} is RANDOMLY INITIALISED, not pretrained: "
                "scores show the pipeline works, nothing more"
            )
        t = spec.settings.training
        self.max_samples = int(t.max_seconds * TARGET_SR)
        self.waves, self.preprocessing = load_waves(corpus, self.model_name, self.max_samples)
        self.labels = np.array([c.emotion_id - 1 for c in corpus.clips])
        self.folds = corpus_folds(corpus, spec.data.folds)
        self.cache = build_caches(spec, corpus, reporter, (self.waves, self.preprocessing))
        self.bank = None
        if self.cache is not None:
            from hpo.kinds.w2v.cache import FrameBank

            self.bank = FrameBank(self.cache, device())
        self.tb_root = Path(t.tensorboard_dir) / spec.name
        if reporter:
            reporter.log(f"TensorBoard logs: {self.tb_root} (tensorboard --logdir {self.tb_root})")

    def fold_fn(self, trial: optuna.Trial, params: dict) -> FoldFn:
        import torch

        from hpo.kinds.w2v.data import ClipDataset
        from hpo.kinds.w2v.train import Diverged, Screened, train_fold

        cfg = self.spec.settings.merged(params)
        tb = self.tb_root / f"trial-{trial.number:04d}"
        trial.set_user_attr("tensorboard", str(tb))
        trial.set_user_attr("model", self.model_name)
        trial.set_user_attr("random_init_model", self.random_init)

        p = self.spec.pruner
        epochs_run: list[float] = []

        def fit_and_score(fold: Fold) -> dict:
            seed = cfg["training"]["seed"] + fold.index
            screen = None
            if p.epoch_stage and fold.index == p.screen_fold:
                screen = EpochScreen(
                    trial,
                    p.epoch_warmup,
                    p.epoch_percentile,
                    p.epoch_startup_trials,
                    self.spec.objective.direction == "maximize",
                )
            model = new_classifier(self.model_name, cfg["model"], seed)
            model.bank = self.bank
            mk = lambda idx: ClipDataset(idx, self.labels, self.waves, self.max_samples, self.cache)  # noqa: E731
            try:
                result = train_fold(
                    model,
                    cfg["training"],
                    mk(fold.train),
                    mk(fold.valid),
                    tb / f"fold-{fold.index}",
                    fold.index,
                    self.reporter,
                    screen,
                    self.spec.objective.metric,
                )
            except Screened as e:
                epochs_run.append(e.epochs)
                trial.set_user_attr("epochs_run", sum(epochs_run))
                trial.set_user_attr("pruned_reason", str(e))
                trial.set_user_attr("pruned_at", {"fold": fold.index, "epoch": e.epochs})
                raise optuna.TrialPruned(str(e)) from None
            except Diverged as e:
                trial.set_user_attr("pruned_reason", f"diverged: {e}")
                raise optuna.TrialPruned(f"diverged: {e}") from None
            except torch.cuda.OutOfMemoryError:
                trial.set_user_attr("pruned_reason", f"GPU out of memory at fold {fold.index}")
                raise optuna.TrialPruned("GPU out of memory") from None
            finally:
                del model
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            assert result is not None
            epochs_run.append(result.epochs)
            trial.set_user_attr("epochs_run", sum(epochs_run))
            trial.set_user_attr("schedule_phases", list(result.phases))
            return result.scores

        return fit_and_score
