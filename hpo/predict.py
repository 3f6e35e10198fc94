"""``hpo predict``: per-emotion probabilities for wav files from a model made by ``hpo train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpo.corpus.audio import BadAudio, to_16k_mono
from hpo.errors import HpoError
from hpo.train import META


def _read_clip(path: Path) -> np.ndarray:
    try:
        y, _ = to_16k_mono(path.read_bytes())
    except OSError as e:
        raise HpoError(f"{path}: cannot read ({e.strerror})") from None
    except BadAudio as e:
        raise HpoError(f"{path}: {e}") from None
    return y


def predict(model_dir: Path, clips: list[Path]) -> dict:
    """``{"labels": [...], "random_init_model": bool, "predictions": {path: [p, ...]}}``."""
    meta_path = model_dir / META
    if not meta_path.is_file():
        raise HpoError(f"{model_dir}: not a model made by 'hpo train' (no {META})")
    meta = json.loads(meta_path.read_text())
    waves = [_read_clip(p) for p in clips]
    if meta["kind"] == "svm":
        probs = _svm_probs(model_dir, meta, waves)
    else:
        probs = _w2v_probs(model_dir, waves)
    return {
        "labels": meta["labels"],
        "random_init_model": bool(meta.get("random_init_model", False)),
        "synthetic_training_corpus": bool(meta["trained_on"].get("synthetic")),
        "predictions": {
            str(p): [float(x) for x in row] for p, row in zip(clips, probs, strict=True)
        },
    }


def _svm_probs(model_dir: Path, meta: dict, waves: list[np.ndarray]) -> np.ndarray:
    import joblib

    from hpo.svm.config import FeatureSettings
    from hpo.svm.features import MIN_SPEAKER_CLIPS, clip_features, speaker_normalize

    pipe = joblib.load(model_dir / "model.joblib")
    s = FeatureSettings(**meta["config"]["features"])
    X = np.stack([clip_features(w, s) for w in waves])
    if s.speaker_norm:
        if len(waves) < MIN_SPEAKER_CLIPS:
            raise HpoError(
                f"{model_dir}: this SVM normalises features per speaker; give at least "
                f"{MIN_SPEAKER_CLIPS} clips of one speaker (all clips given are taken as one "
                "speaker), or train with speaker_norm = false"
            )
        X = speaker_normalize(X, np.zeros(len(X)))
    return pipe.predict_proba(X)


def _w2v_probs(model_dir: Path, waves: list[np.ndarray]) -> np.ndarray:
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from hpo.w2v.model import Wav2Vec2EmotionClassifier, preprocess
    from hpo.w2v.objective import quiet_transformers

    quiet_transformers()
    model = Wav2Vec2EmotionClassifier.from_pretrained(model_dir).eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    max_samples = int(getattr(model.config, "hpo_max_seconds", 6.0) * 16_000)
    out = []
    with torch.no_grad():
        for w in waves:
            x = torch.from_numpy(preprocess(fe, w, max_samples))[None]
            logits = model(input_values=x, lengths=torch.tensor([x.shape[1]])).logits
            out.append(torch.softmax(logits.float(), -1)[0].numpy())
    return np.stack(out)
