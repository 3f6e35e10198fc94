"""The SVM model of an exported configuration: trained on every clip, used for prediction.

The saved scikit-learn Pipeline (``pipeline.make_pipeline``) holds every step fitted on the
training clips: imputation, standardisation, the unit-norm scaling of scale-free C and
gamma, and the SVC with Platt-scaled probabilities. Only speaker normalisation runs before
it, on the clips' own speaker (see ``features.speaker_normalize``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hpo.errors import HpoError

# Models trained before imputation moved into the pipeline: the training corpus's medians,
# applied before the pipeline (theirs has no imputer).
IMPUTE_FILE = "impute.npy"


def make_pipeline(svm: dict[str, Any], probability: bool = False, seed: int = 0):
    """A scikit-learn Pipeline from the merged ``[svm]`` settings of a study or an export."""
    from hpo.kinds.svm.pipeline import make_pipeline as _make

    return _make(svm, probability, seed)


def train_and_save(cfg: dict[str, Any], corpus, out: Path) -> dict[str, Any]:
    """Fit the exported configuration on every clip; ``model.joblib`` with probabilities.

    Returns the SVC's parameters on plain standardised features (``absolute_params``), for
    ``hpo.json``: what to give scikit-learn's own StandardScaler + SVC for the same model."""
    import joblib

    from hpo.kinds.svm.config import FeatureSettings
    from hpo.kinds.svm.features import corpus_features
    from hpo.kinds.svm.pipeline import absolute_params, is_unit

    s = FeatureSettings(**cfg["features"])
    X = corpus_features(corpus, s)
    pipe = make_pipeline(cfg["svm"], probability=True).fit(X, corpus.label_ids)
    joblib.dump(pipe, out / "model.joblib")
    scale = pipe.named_steps["unit"].scale_ if is_unit(cfg["svm"]) else 1.0
    return {"svc_on_standardised_features": absolute_params(cfg["svm"], scale)}


def predict_proba(model_dir: Path, meta: dict[str, Any], waves: list[np.ndarray]) -> np.ndarray:
    import joblib

    from hpo.kinds.svm.config import FeatureSettings
    from hpo.kinds.svm.features import MIN_SPEAKER_CLIPS, features_of, speaker_normalize

    try:
        pipe = joblib.load(model_dir / "model.joblib")
    except Exception as e:  # missing, truncated or not a pickle: any of a dozen types
        raise HpoError(
            f"{model_dir / 'model.joblib'}: cannot be loaded ({type(e).__name__}); "
            "train the model again with 'hpo train'"
        ) from None
    s = FeatureSettings(**meta["config"]["features"])
    if s.speaker_norm and len(waves) < MIN_SPEAKER_CLIPS:
        raise HpoError(
            f"{model_dir}: this SVM normalises features per speaker; give at least "
            f"{MIN_SPEAKER_CLIPS} clips of one speaker (all clips given are taken as one "
            "speaker), or train with speaker_norm = false"
        )
    X = np.stack([features_of(w, s) for w in waves])
    legacy = model_dir / IMPUTE_FILE
    if legacy.is_file():  # an older model: its pipeline expects imputed features
        X = np.where(np.isfinite(X), X, np.load(legacy)[None, :])
    if s.speaker_norm:
        X = speaker_normalize(X, np.zeros(len(X)))
    return pipe.predict_proba(X)
