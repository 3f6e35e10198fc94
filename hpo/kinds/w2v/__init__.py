"""wav2vec2-family backbones for emotion classification, on two paths that share their
parts: fine-tuning (``finetune/``: the Trainer, the CNN cache) and the frozen-backbone probe
(``probe/``: the layer cache, a head trained in plain PyTorch). Shared: loading backbones,
the classifier and its poolings, the schedule, devices and precision, the fold monitor.

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
        from hpo.kinds.w2v.backbone import check_layers, check_model

        if spec.pruner.epoch_stage and not spec.settings.training.eval_every_epoch:
            raise SpecError(
                f"{spec.path}: [pruner] epoch_stage needs [training] eval_every_epoch = true"
            )
        m = spec.settings.model
        check_model(m.name, None if m.finetune else m.probe_layer, f"{spec.path}: [model]")
        for param in spec.space:
            if param.name == "probe_layer":  # the searched range must fit this backbone
                d = param.distribution
                layers = list(d.choices) if hasattr(d, "choices") else [d.low, d.high]
                check_layers(m.name, layers, f"{spec.path}: [space.probe_layer]")

    def describe(self, spec) -> dict[str, Any]:
        from hpo.kinds.w2v.backbone import backbone_info

        return backbone_info(spec.settings.model.name)

    def prepare(self, spec, corpus, reporter=None) -> None:
        s = spec.settings
        if s.model.finetune:
            from hpo.kinds.w2v.finetune.objective import build_cnn_cache

            build_cnn_cache(spec, corpus, reporter)
        else:
            from hpo.kinds.w2v.probe.objective import build_layer_cache

            build_layer_cache(corpus, s.model.name, s.training.max_seconds, reporter)

    def objective(self, spec, corpus, reporter=None):
        if spec.settings.model.finetune:
            from hpo.kinds.w2v.finetune.objective import FinetuneObjective

            return FinetuneObjective(spec, corpus, reporter)
        from hpo.kinds.w2v.probe.objective import ProbeObjective

        return ProbeObjective(spec, corpus, reporter)

    def train(self, cfg: dict[str, Any], corpus, out: Path, reporter) -> dict:
        from hpo.kinds.w2v.backbone import backbone_info, check_model, quiet_transformers
        from hpo.kinds.w2v.device import claim_one_gpu

        quiet_transformers()
        m = cfg["model"]
        # An exported config edited by hand gets the same check as a study file.
        probe = None if m.get("finetune", True) else m.get("probe_layer", -1)
        check_model(m["name"], probe, "[model]")
        claim_one_gpu(reporter.log if reporter else None)
        if cfg["model"].get("finetune", True):
            from hpo.kinds.w2v.finetune.saved import train_and_save
        else:
            from hpo.kinds.w2v.probe.saved import train_and_save
        train_and_save(cfg, corpus, out, reporter)
        return backbone_info(cfg["model"]["name"])

    def speaker_norm(self, meta: dict[str, Any]):
        from hpo.kinds.speaker_norm import SpeakerNorm

        return SpeakerNorm.of(meta["config"].get("model", {}))

    def predict(self, model_dir: Path, meta: dict[str, Any], waves, groups=None):
        norm = self.speaker_norm(meta)
        if norm.on:
            if groups is None:
                raise ValueError("a speaker-normalised model needs the statistics' groups")
            if meta["config"].get("model", {}).get("finetune", True):
                from hpo.kinds.w2v.finetune.speaker import predict_normalised
            else:
                from hpo.kinds.w2v.probe.saved import predict_normalised
            return predict_normalised(model_dir, waves, groups, norm)
        from hpo.kinds.w2v.saved import predict_proba

        return predict_proba(model_dir, meta, waves)


KIND = W2vKind()
