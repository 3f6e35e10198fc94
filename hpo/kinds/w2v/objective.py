"""The ``w2v`` objective: each trial fine-tunes the backbone once per actor fold."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from hpo.config.study import StudySpec
from hpo.corpus.audio import TARGET_SR, load_clip
from hpo.corpus.folds import Fold, corpus_folds
from hpo.corpus.manifest import Corpus
from hpo.trial.cv import CvObjective, FoldFn
from hpo.trial.screening import EpochScreen


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
    return waves, preprocessing_key(model_name, max_samples, fe)


def preprocessing_key(model_name: str, max_samples: int, fe=None) -> str:
    """How clips are cut and normalised for ``model_name``: part of every cache key."""
    from hpo.kinds.w2v.backbone import load_feature_extractor

    fe = fe or load_feature_extractor(model_name)
    return json.dumps([max_samples, fe.sampling_rate, fe.do_normalize])


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def new_classifier(name: str, model_cfg: dict, seed: int, n_labels: int):
    """A fresh classifier; the same seed gives the same head in every trial."""
    from transformers import set_seed

    from hpo.kinds.w2v.model import build_classifier

    set_seed(seed)
    return build_classifier(
        name, model_cfg["pooling"], model_cfg["dropout"], model_cfg["mask_time_prob"], n_labels
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
    model = new_classifier(s.model.name, {**vars(s.model)}, s.training.seed, len(corpus.labels))
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
        t = spec.settings.training
        self.max_samples = int(t.max_seconds * TARGET_SR)
        self.waves, self.preprocessing = load_waves(corpus, self.model_name, self.max_samples)
        # After the clips were read: a damaged clip is then the only line printed.
        _note_random_init(reporter, self.model_name, self.random_init)
        self.labels = corpus.label_ids
        self.n_labels = len(corpus.labels)
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
        from hpo.kinds.w2v.data import ClipDataset
        from hpo.kinds.w2v.train import train_fold

        cfg = self.spec.settings.merged(params)
        tb = _announce(trial, self.tb_root, self.model_name, self.random_init)
        guard = FoldGuard(trial, self.spec)

        def fit_and_score(fold: Fold) -> dict:
            model = new_classifier(
                self.model_name, cfg["model"], cfg["training"]["seed"] + fold.index, self.n_labels
            )
            model.bank = self.bank
            mk = lambda idx: ClipDataset(idx, self.labels, self.waves, self.max_samples, self.cache)  # noqa: E731

            def run(model=model):
                r = train_fold(
                    model,
                    cfg["training"],
                    mk(fold.train),
                    mk(fold.valid),
                    tb / f"fold-{fold.index}",
                    fold.index,
                    self.reporter,
                    guard.screen(fold),
                    self.spec.objective.metric,
                )
                trial.set_user_attr("schedule_phases", list(r.phases))
                guard.layer_weights(fold, model.pooler)
                return r.scores, r.epochs

            try:
                return guard.run(fold, run)
            finally:
                del model, run
                gc.collect()  # free the fold's model (GPU memory) before the next one

        return fit_and_score


def _note_random_init(reporter, model: str, random_init: bool) -> None:
    if reporter and random_init:
        reporter.log(
            f"note: model {model!r} is RANDOMLY INITIALISED, not pretrained: "
            "scores show the pipeline works, nothing more"
        )


def _announce(trial: optuna.Trial, tb_root: Path, model: str, random_init: bool) -> Path:
    tb = tb_root / f"trial-{trial.number:04d}"
    trial.set_user_attr("tensorboard", str(tb))
    trial.set_user_attr("model", model)
    trial.set_user_attr("random_init_model", random_init)
    return tb


class FoldGuard:
    """What every w2v fold shares: the epoch stage, and turning a diverged, screened-out or
    out-of-memory fold into a PRUNED trial with its reason; epochs trained are counted."""

    def __init__(self, trial: optuna.Trial, spec: StudySpec) -> None:
        self.trial, self.spec, self.epochs_run = trial, spec, 0.0
        self.weights: dict[str, list[float]] = {}

    def screen(self, fold: Fold) -> EpochScreen | None:
        p = self.spec.pruner
        if fold.index != p.screen_fold:
            return None
        # With the stage off the curve is still kept: `prune_bench.py` replays it.
        maximize = self.spec.objective.direction == "maximize"
        return EpochScreen(
            self.trial,
            p.epoch_warmup,
            p.epoch_percentile,
            p.epoch_startup_trials,
            maximize,
            decide=p.epoch_stage,
        )

    def layer_weights(self, fold: Fold, pooler) -> None:
        """The layer mix ``layer_weighted`` learned, per fold (for the report)."""
        import torch

        if hasattr(pooler, "layer_logits"):
            w = torch.softmax(pooler.layer_logits.detach().float().cpu(), 0)
            self.weights[str(fold.index)] = [round(float(v), 5) for v in w]
            self.trial.set_user_attr("layer_weights", self.weights)

    def run(self, fold: Fold, train) -> dict:
        import torch

        from hpo.kinds.w2v.train import Diverged, Screened

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


class ProbeObjective(CvObjective):
    """Frozen backbone (``[model] finetune = false``): each fold trains the head on the
    layer cache (``probe.py``); the same folds, pruning, epoch stage and TensorBoard."""

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        from hpo.kinds.w2v.backbone import resolve_model_name
        from hpo.kinds.w2v.probe import build_layer_cache

        quiet_transformers()
        self.spec, self.reporter = spec, reporter
        self.model_name = spec.settings.model.name
        _, self.random_init = resolve_model_name(self.model_name)
        self.labels = corpus.label_ids
        self.n_labels = len(corpus.labels)
        self.folds = corpus_folds(corpus, spec.data.folds)
        t = spec.settings.training
        self.cache = build_layer_cache(corpus, self.model_name, t.max_seconds, reporter)
        _note_random_init(reporter, self.model_name, self.random_init)
        self._inputs: dict[tuple[str, int], Any] = {}
        self.tb_root = Path(spec.settings.training.tensorboard_dir) / spec.name

    def inputs(self, pooling: str):
        from hpo.kinds.w2v.probe import ProbeInputs

        key = (pooling, self.spec.settings.model.probe_layer)
        if key not in self._inputs:
            self._inputs[key] = ProbeInputs(self.cache, *key)
        return self._inputs[key]

    def fold_fn(self, trial: optuna.Trial, params: dict) -> FoldFn:
        import torch

        from hpo.kinds.w2v.probe import ProbeHead, train_head

        cfg = self.spec.settings.merged(params)
        m, t = cfg["model"], cfg["training"]
        tb = _announce(trial, self.tb_root, self.model_name, self.random_init)
        guard = FoldGuard(trial, self.spec)
        hidden = self.cache.states.shape[-1]

        def fit_and_score(fold: Fold) -> dict:
            seed = t["seed"] + fold.index
            torch.manual_seed(seed)
            head = ProbeHead(m["pooling"], hidden, self.cache.n_layers, m["dropout"], self.n_labels)

            def run():
                on_epoch = None
                if self.reporter:
                    on_epoch = lambda e, n, info: self.reporter.epoch_done(fold.index, e, n, info)  # noqa: E731
                scores, epochs = train_head(
                    head,
                    self.inputs(m["pooling"]),
                    self.labels,
                    fold.train,
                    fold.valid,
                    {**t, "seed": seed},
                    tb / f"fold-{fold.index}",
                    guard.screen(fold),
                    self.spec.objective.metric,
                    on_epoch,
                )
                guard.layer_weights(fold, head.pooler)
                return scores, epochs

            return guard.run(fold, run)

        return fit_and_score
