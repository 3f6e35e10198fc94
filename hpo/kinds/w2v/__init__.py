"""Fine-tuning a wav2vec2-family backbone for emotion classification.

Only this package imports torch and transformers, and only inside the methods below, so
validating a w2v study file or running an SVM study never loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.kinds._base import Kind


class W2vKind(Kind):
    name = "w2v"
    settings_module = "hpo.kinds.w2v.config"
    versions = ("torch", "transformers", "accelerate")

    def check(self, spec) -> None:
        from hpo.errors import SpecError
        from hpo.kinds.w2v.backbone import check_model

        if spec.pruner.epoch_stage and not spec.settings.training.eval_every_epoch:
            raise SpecError(
                f"{spec.path}: [pruner] epoch_stage needs [training] eval_every_epoch = true"
            )
        check_model(spec.settings.model.name)

    def describe(self, spec) -> dict[str, Any]:
        from hpo.kinds.w2v.backbone import backbone_info

        return backbone_info(spec.settings.model.name)

    def prepare(self, spec, corpus, reporter=None) -> None:
        if spec.settings.model.finetune:
            from hpo.kinds.w2v.objective import build_caches

            build_caches(spec, corpus, reporter)
        else:
            from hpo.kinds.w2v.probe import build_layer_cache

            s = spec.settings
            build_layer_cache(corpus, s.model.name, s.training.max_seconds, reporter)

    def objective(self, spec, corpus, reporter=None):
        from hpo.kinds.w2v.objective import ProbeObjective, W2vObjective

        cls = W2vObjective if spec.settings.model.finetune else ProbeObjective
        return cls(spec, corpus, reporter)

    def train(self, cfg: dict[str, Any], corpus, out: Path, reporter) -> dict:
        from hpo.kinds.w2v.saved import train_and_save

        return train_and_save(cfg, corpus, out, reporter)

    def predict(self, model_dir: Path, meta: dict[str, Any], waves):
        from hpo.kinds.w2v.saved import predict_proba

        return predict_proba(model_dir, meta, waves)


KIND = W2vKind()
