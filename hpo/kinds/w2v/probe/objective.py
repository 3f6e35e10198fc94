"""The frozen-backbone objective (``[model] finetune = false``, the SUPERB / EmoBox
protocol): the backbone runs once per clip into the layer cache; each fold standardises
it with its training clips' statistics and trains only the head (layer mix, pooling,
projector, classifier) on it, on the training device, with the same folds,
pruning, epoch stage and TensorBoard as fine-tuning."""

from __future__ import annotations

from typing import Any

import optuna
import torch

from hpo.config.study import StudySpec
from hpo.corpus.folds import Fold
from hpo.corpus.manifest import Corpus
from hpo.kinds.speaker_norm import SpeakerNorm, corpus_groups, variants
from hpo.kinds.w2v.config import layer_and_pooling
from hpo.kinds.w2v.objective import W2vObjective
from hpo.kinds.w2v.probe.layers import LayerCache
from hpo.trial.cv import FoldFn


def build_layer_cache(
    corpus: Corpus, model_name: str, max_seconds: float, reporter=None, device=None
) -> LayerCache:
    """The layer cache of backbone ``model_name`` for clips cut at ``max_seconds`` (built
    once; its size and build time printed)."""
    from hpo.kinds.w2v.backbone import BackboneStore, quiet_transformers
    from hpo.kinds.w2v.clips import load_waves, max_samples, preprocessing_key
    from hpo.kinds.w2v.device import training_device
    from hpo.kinds.w2v.probe import layers

    quiet_transformers()
    n_max = max_samples(max_seconds)
    # The key hashes the backbone's weights only: the head built with it does not matter.
    model = BackboneStore(model_name, 0.0).classifier(
        {"pooling": "mean", "dropout": 0.0}, 0, len(corpus.labels)
    )
    log = reporter.log if reporter else None
    cache = layers.load_or_build(
        model,
        lambda: load_waves(corpus, model_name, n_max)[0],  # clips read only to build
        corpus,
        preprocessing_key(model_name, n_max),
        device or training_device(),
        log,
    )
    if log:
        size, n, dt = cache.size_bytes / 2**30, len(corpus.clips), cache.build_seconds
        how = f"built in {dt:.1f} s ({n / dt:.1f} clips/s)" if dt else "reused"
        log(
            f"layer cache: {n} clips x {cache.n_layers} layers, {size:.2f} GiB "
            f"on disk at {cache.root}, {how}"
        )
    return cache


class ProbeObjective(W2vObjective):
    """``trial -> mean CV score`` for ``[model] finetune = false``."""

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        super().__init__(spec, corpus, reporter)
        t = spec.settings.training
        self.cache = build_layer_cache(
            corpus, self.model_name, t.max_seconds, reporter, self.device
        )
        self.note_random_init()
        self.y = torch.from_numpy(self.labels).to(self.device)
        self._inputs: dict[tuple, Any] = {}
        for n in variants(spec.settings.model.norm, spec.space):
            if n.on:  # a speaker too small for the enrolment rule: refused before trial 0
                corpus_groups(n, corpus)

    def inputs(self, pooling: str, layer: int | str, norm: SpeakerNorm):
        """What heads of ``pooling`` on ``layer`` read, normalised per speaker as ``norm``
        says, built once per worker and kept on the device (otherwise raw: each fold's head
        standardises them with its own statistics)."""
        from hpo.kinds.w2v.probe.head import ProbeInputs

        key = (pooling, layer, norm if norm.on else None)
        if key not in self._inputs:
            groups = corpus_groups(norm, self.corpus) if norm.on else None
            self._inputs[key] = ProbeInputs(
                self.cache, pooling, layer, self.device, self.log, groups, norm.scales
            )
        return self._inputs[key]

    def fold_fn(self, trial: optuna.Trial, params: dict) -> FoldFn:
        from hpo.kinds.w2v.guard import FoldGuard
        from hpo.kinds.w2v.probe.head import ProbeHead
        from hpo.kinds.w2v.probe.train import train_head
        from hpo.kinds.w2v.schedule import plan_fold

        cfg = self.spec.settings.merged(params)
        m, t = cfg["model"], cfg["training"]
        layer, pooling = layer_and_pooling(m)
        norm = SpeakerNorm.of(m)
        trial.set_user_attr("speaker_norm", norm.short())  # disclosed, searched or not
        tb = self.announce(trial)
        guard = FoldGuard(trial, self.spec)
        hidden, n_states = self.cache.states.shape[-1], self.cache.n_layers

        def fit_and_score(fold: Fold) -> dict:
            seed = t["seed"] + fold.index

            def run() -> tuple[dict, float]:
                # Built in here: the guard frees its memory once this returns or raises.
                torch.manual_seed(seed)
                head = ProbeHead(
                    pooling,
                    hidden,
                    n_states,
                    m["dropout"],
                    self.n_labels,
                    layer,
                    m["head"],
                    m["standardize"],
                )
                head.to(self.device)
                plan = plan_fold(len(fold.train), t)
                with self.monitor(tb, fold, plan, guard) as monitor:
                    scores = train_head(
                        head,
                        self.inputs(pooling, layer, norm),
                        self.y,
                        fold.train,
                        fold.valid,
                        {**t, "seed": seed},
                        monitor,
                        plan,
                        self.dtype,
                    )
                guard.layer_weights(fold, head.layer_mix)
                assert scores is not None
                return scores, float(t["epochs"])

            return guard.run(fold, run)

        return fit_and_score
