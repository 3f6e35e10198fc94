"""The SVM pipeline (standardise each feature, then an SVC), trained and used for prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hpo.errors import HpoError

IMPUTE_FILE = "impute.npy"


def make_pipeline(svm: dict[str, Any], probability: bool = False, seed: int = 0):
    """A scikit-learn Pipeline from the merged ``[svm]`` settings of a study or an export."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svc = SVC(
        kernel=svm["kernel"],
        C=float(svm["C"]),
        gamma=svm.get("gamma", "scale"),
        degree=int(svm.get("degree", 3)),
        coef0=float(svm.get("coef0", 0.0)),
        class_weight=None if svm.get("class_weight") == "none" else svm.get("class_weight"),
        cache_size=float(svm.get("cache_size", 1000.0)),
        max_iter=int(svm.get("max_iter", -1)),
        random_state=seed,
    )
    if probability:
        from sklearn.calibration import CalibratedClassifierCV

        # Platt scaling fitted on internal cross-validation, then one SVC on all the data
        # (what SVC(probability=True) did before scikit-learn deprecated it).
        svc = CalibratedClassifierCV(svc, ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("svc", svc)])


def train_and_save(cfg: dict[str, Any], corpus, out: Path) -> None:
    """Fit the exported configuration on every clip; ``model.joblib`` with probabilities."""
    import joblib

    from hpo.kinds.svm.config import FeatureSettings
    from hpo.kinds.svm.features import corpus_features, load_features

    s = FeatureSettings(**cfg["features"])
    X = corpus_features(corpus, s)
    y = corpus.label_ids
    pipe = make_pipeline(cfg["svm"], probability=True).fit(X, y)
    joblib.dump(pipe, out / "model.joblib")
    # What a non-finite feature of a new clip is replaced by: the training corpus's median.
    np.save(out / IMPUTE_FILE, np.median(load_features(corpus, s), axis=0))


def predict_proba(model_dir: Path, meta: dict[str, Any], waves: list[np.ndarray]) -> np.ndarray:
    import joblib

    from hpo.kinds.svm.config import FeatureSettings
    from hpo.kinds.svm.features import MIN_SPEAKER_CLIPS, features_of, speaker_normalize

    pipe = joblib.load(model_dir / "model.joblib")
    s = FeatureSettings(**meta["config"]["features"])
    if s.speaker_norm and len(waves) < MIN_SPEAKER_CLIPS:
        raise HpoError(
            f"{model_dir}: this SVM normalises features per speaker; give at least "
            f"{MIN_SPEAKER_CLIPS} clips of one speaker (all clips given are taken as one "
            "speaker), or train with speaker_norm = false"
        )
    X = np.stack([features_of(w, s) for w in waves])
    bad = ~np.isfinite(X)
    if bad.any():
        X = np.where(bad, np.load(model_dir / IMPUTE_FILE)[None, :], X)
    if s.speaker_norm:
        X = speaker_normalize(X, np.zeros(len(X)))
    return pipe.predict_proba(X)
