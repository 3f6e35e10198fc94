"""The fine-tuning objective: each trial fine-tunes the backbone once per speaker fold.

A worker pays its fixed costs once, not once per fold: the clips are read once, the
backbone's weights are read from disk once (each fold trains a copy, ``BackboneStore``),
and the CNN cache goes to the training device once (``FrameBank``).
"""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import optuna

from hpo.config.study import StudySpec
from hpo.corpus.folds import Fold
from hpo.corpus.manifest import Corpus
from hpo.kinds.speaker_norm import SpeakerNorm, corpus_groups, variants
from hpo.kinds.w2v.objective import W2vObjective
from hpo.trial.cv import FoldFn


def build_cnn_cache(spec: StudySpec, corpus: Corpus, reporter=None) -> None:
    """The CNN cache of this study's backbone and corpus, built once before workers start."""
    from hpo.kinds.w2v.backbone import BackboneStore, quiet_transformers
    from hpo.kinds.w2v.clips import load_waves, max_samples
    from hpo.kinds.w2v.device import training_device
    from hpo.kinds.w2v.finetune.cache import load_or_build

    quiet_transformers()
    s = spec.settings
    if not s.training.feature_cache:
        return
    waves, prep = load_waves(corpus, s.model.name, max_samples(s.training.max_seconds))
    store = BackboneStore(s.model.name, s.model.mask_time_prob)
    model = store.classifier({"pooling": "mean", "dropout": 0.0}, 0, len(corpus.labels))
    log = reporter.log if reporter else None
    load_or_build(model, waves, corpus, prep, training_device(), log)


class FinetuneObjective(W2vObjective):
    """``trial -> mean CV score`` for ``[model] finetune = true``."""

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        from hpo.kinds.w2v.backbone import BackboneStore
        from hpo.kinds.w2v.clips import load_waves, max_samples

        super().__init__(spec, corpus, reporter)
        m, t = spec.settings.model, spec.settings.training
        self.waves, prep = load_waves(corpus, self.model_name, max_samples(t.max_seconds))
        self.note_random_init()
        self.backbones = BackboneStore(self.model_name, m.mask_time_prob, self.device)
        self.bank = None
        self.lengths = np.array([len(w) for w in self.waves])
        cache = None
        if t.feature_cache:
            self.bank, cache = self._frame_bank(prep)
            self.lengths = cache.lengths()
        self._affine: dict[SpeakerNorm, tuple[np.ndarray, np.ndarray]] = {}
        self.moments = None
        norms = [n for n in variants(m.norm, spec.space) if n.on]
        for n in norms:  # a speaker too small for the enrolment rule: refused before trial 0
            corpus_groups(n, corpus)
        if norms:  # the CNN frames' moments per clip, once per worker (speaker.py)
            self.moments = self._moments(cache)
        if self.log:
            self.log(f"TensorBoard logs: {self.tb_root} (tensorboard --logdir {self.tb_root})")

    def _frame_bank(self, prep: str):
        from hpo.kinds.w2v.bank import FrameBank
        from hpo.kinds.w2v.device import place_cache
        from hpo.kinds.w2v.finetune.cache import load_or_build

        model = self.backbones.classifier({"pooling": "mean", "dropout": 0.0}, 0, self.n_labels)
        cache = load_or_build(model, self.waves, self.corpus, prep, self.device, self.log)
        del model
        bank = place_cache(cache.nbytes, self.device, lambda d: FrameBank(cache, d), self.log)
        return bank, cache

    def _moments(self, cache):
        from hpo.kinds.w2v.finetune.speaker import cache_moments, cnn_moments

        if cache is not None:
            return cache_moments(cache)
        model = self.backbones.classifier({"pooling": "mean", "dropout": 0.0}, 0, self.n_labels)
        return cnn_moments(model, self.waves, self.device)

    def affine(self, norm: SpeakerNorm) -> tuple[np.ndarray, np.ndarray] | None:
        """Every clip's affine map of its CNN frames under ``norm`` (None: off), computed
        once per worker: the statistics depend on no fold."""
        from hpo.kinds.w2v.finetune.speaker import corpus_affine

        if not norm.on:
            return None
        if norm not in self._affine:
            assert self.moments is not None
            self._affine[norm] = corpus_affine(norm, self.corpus, self.moments)
        return self._affine[norm]

    def fold_fn(self, trial: optuna.Trial, params: dict) -> FoldFn:
        from hpo.kinds.w2v.finetune.data import fold_examples
        from hpo.kinds.w2v.finetune.train import train_fold
        from hpo.kinds.w2v.guard import FoldGuard
        from hpo.kinds.w2v.schedule import plan_fold

        cfg = self.spec.settings.merged(params)
        m, t = cfg["model"], cfg["training"]
        norm = SpeakerNorm.of(m)
        trial.set_user_attr("speaker_norm", norm.short())  # disclosed, searched or not
        affine = self.affine(norm)
        tb = self.announce(trial)
        guard = FoldGuard(trial, self.spec)

        def fit_and_score(fold: Fold) -> dict:
            def run() -> tuple[dict, float]:
                # Built in here: the guard frees its memory once this returns or raises.
                model = self.backbones.classifier(m, t["seed"] + fold.index, self.n_labels)
                model.bank = self.bank
                plan = plan_fold(len(fold.train), t)
                ph, bb = plan.phases, plan.backbone or plan.phases
                trial.set_user_attr("schedule_phases", [ph.warmup, ph.hold, ph.decay])
                # The backbone's: updates frozen (head-only phase), warm-up, hold, decay.
                trial.set_user_attr("backbone_phases", list(astuple(bb)))
                with self.monitor(tb, fold, plan, guard) as monitor:
                    scores = train_fold(
                        model,
                        t,
                        fold_examples(fold.train, self.labels, self.lengths),
                        fold_examples(fold.valid, self.labels, self.lengths),
                        monitor,
                        plan,
                        fold.index,
                        self.dtype,
                        self.waves,
                        affine,
                    )
                guard.layer_weights(fold, model.layer_mix)
                assert scores is not None
                return scores, float(t["epochs"])

            return guard.run(fold, run)

        return fit_and_score
