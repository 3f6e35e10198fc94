"""The classical baseline: utterance features, per-speaker normalisation, scaler + SVC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.kinds._base import Kind


class SvmKind(Kind):
    name = "svm"
    settings_module = "hpo.kinds.svm.config"
    versions = ("scikit-learn", "librosa")

    def check(self, spec) -> None:
        from hpo.errors import SpecError

        if spec.pruner.epoch_stage:
            raise SpecError(f"{spec.path}: [pruner] epoch_stage applies to w2v studies only")
        if spec.settings.fused(spec.space) and spec.settings.svm.scale != "unit":
            # Fusion weighs each set to unit mean squared norm: its C and gamma are
            # scale-free whatever the file says, so an absolute C would mean something else.
            raise SpecError(
                f"{spec.path}: [svm] a fused feature_set (sets joined by '+') needs "
                'scale = "unit"'
            )

    def prepare(self, spec, corpus, reporter=None) -> None:
        from hpo.kinds.svm.features import load_features

        for variant in spec.settings.feature_variants(spec.space):
            load_features(corpus, variant)

    def objective(self, spec, corpus, reporter=None):
        from hpo.kinds.svm.objective import SvmObjective

        return SvmObjective(spec, corpus, reporter)

    def train(self, cfg: dict[str, Any], corpus, out: Path, reporter) -> dict:
        from hpo.kinds.svm.model import train_and_save

        return train_and_save(cfg, corpus, out)

    def predict(self, model_dir: Path, meta: dict[str, Any], waves, groups=None):
        return self.classify(model_dir, meta, waves, groups)[1]

    def speaker_norm(self, meta: dict[str, Any]):
        from hpo.kinds.svm.config import FeatureSettings

        return FeatureSettings(**meta["config"]["features"]).norm

    def classify(self, model_dir: Path, meta: dict[str, Any], waves, groups=None):
        from hpo.kinds.svm.model import classify

        # The SVC's own decision, which cross-validation scored, not the arg-max of the
        # calibrated probabilities.
        return classify(model_dir, meta, waves, groups)


KIND = SvmKind()
