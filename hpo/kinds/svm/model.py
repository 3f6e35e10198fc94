"""The SVM model of an exported configuration: trained on every clip, used for prediction.

``model.joblib`` is a ``pipeline.SpeakerCalibrated``: the scikit-learn Pipeline
(``pipeline.make_pipeline``: imputation, standardisation, the unit-norm scaling of
scale-free C and gamma, the SVC) fitted on every training clip, whose ``predict`` is the SVC
decision cross-validation scored, and per-label probabilities from Platt scaling fitted on
the corpus's speaker folds. Only speaker normalisation runs before it, with statistics the
caller names (``hpo.kinds.speaker_norm``: the speaker's enrolment clips, or the clips given).
A fused feature set's pipeline standardises and weighs each set apart
(``pipeline.fused_blocks``); ``hpo.json`` names the sets and their widths (``fused_sets``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.errors import HpoError

if TYPE_CHECKING:
    from hpo.kinds.speaker_norm import Groups


def calibration_splits(corpus) -> list[tuple[np.ndarray, np.ndarray]]:
    """The corpus's own speaker folds as (train, valid) index pairs: the study's protocol,
    so the calibration never sees a speaker's clips on both sides of a split."""
    from hpo.corpus.folds import corpus_folds

    folds = corpus_folds(corpus)
    y = corpus.label_ids
    for f in folds:
        missing = sorted(set(y.tolist()) - set(y[f.train].tolist()))
        if missing:
            # Out-of-fold decision values need every label on each fold's training side.
            name = corpus.labels[missing[0]]
            raise HpoError(
                f"{corpus.root}: label {name!r} is spoken only by speakers of fold {f.index} "
                f"({', '.join(map(str, f.valid_actors))}), so its probabilities cannot be "
                "calibrated on other speakers; add clips of it by other speakers, or prepare "
                "the corpus with fewer folds (hpo data prepare --folds)"
            )
    return [(f.train, f.valid) for f in folds]


def train_and_save(cfg: dict[str, Any], corpus, out: Path) -> dict[str, Any]:
    """Fit the exported configuration on every clip; ``model.joblib`` with probabilities.

    Returns the SVC's parameters on plain standardised features (``absolute_params``), for
    ``hpo.json``: what to give scikit-learn's own StandardScaler + SVC for the same model,
    and the calibration's speaker folds."""
    import joblib

    from hpo.kinds.svm.features import corpus_features, set_widths
    from hpo.kinds.svm.pipeline import absolute_params, calibrated_pipeline, is_unit

    s = feature_settings(cfg)
    splits = calibration_splits(corpus)  # before features: a refused corpus costs nothing
    X = corpus_features(corpus, s)
    blocks = set_widths(corpus, s) if len(s.sets) > 1 else None
    model = calibrated_pipeline(cfg["svm"], splits, blocks=blocks).fit(X, corpus.label_ids)
    joblib.dump(model, out / "model.joblib")
    calibration = {"calibration": {"method": "sigmoid", "speaker_folds": len(splits)}}
    if blocks:  # each set weighed apart: no single scaler + SVC gives this model
        return {"fused_sets": dict(blocks), **calibration}
    scale = model.estimator_.named_steps["unit"].scale_ if is_unit(cfg["svm"]) else 1.0
    return {"svc_on_standardised_features": absolute_params(cfg["svm"], scale), **calibration}


def feature_settings(cfg: dict[str, Any]):
    """The ``[features]`` of an exported configuration; HpoError, naming the key, for a
    feature set hpo does not have (a hand-edited export)."""
    from hpo.kinds.svm.config import FeatureSettings, set_parts

    s = FeatureSettings(**cfg["features"])
    try:
        set_parts(s.set)
    except ValueError as e:
        raise HpoError(f"[config.features] 'set' {e}") from None
    return s


def classify(
    model_dir: Path,
    meta: dict[str, Any],
    waves: list[np.ndarray],
    groups: Groups | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(class index, per-label probabilities) of each scored clip. A model that normalises
    per speaker needs ``groups`` (``hpo.kinds.speaker_norm``: which clips' statistics
    normalise which clips); then only the groups' scored clips are classified, in index
    order (enrolment clips among ``waves`` are not)."""
    import joblib

    from hpo.kinds.speaker_norm import scored_clips, standardise
    from hpo.kinds.svm.features import features_of
    from hpo.kinds.svm.pipeline import SpeakerCalibrated

    try:
        model = joblib.load(model_dir / "model.joblib")
    except Exception as e:  # missing, truncated or not a pickle: any of a dozen types
        raise HpoError(
            f"{model_dir / 'model.joblib'}: cannot be loaded ({type(e).__name__}); "
            "train the model again with 'hpo train'"
        ) from None
    if not isinstance(model, SpeakerCalibrated):  # another hpo version's model
        raise HpoError(
            f"{model_dir / 'model.joblib'}: not a model this hpo version trains; "
            "train the model again with 'hpo train'"
        )
    s = feature_settings(meta["config"])
    if s.norm.on and groups is None:
        raise ValueError("a speaker-normalised model needs the statistics' groups")
    X = np.stack([features_of(w, s) for w in waves])
    if s.norm.on and groups is not None:
        X = standardise(X, groups, s.norm.scales)[scored_clips(groups)]
    return model.predict(X), model.predict_proba(X)
