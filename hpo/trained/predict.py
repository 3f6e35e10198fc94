"""``hpo predict``: a label and per-label probabilities for wav files from a model made by
``hpo train`` (the labels of the corpus it was trained on).

The label is the model's own decision, the one cross-validation scored (an SVM's: its SVC's
decision function). The probabilities are per-label estimates calibrated apart from it (an
SVM's: Platt scaling on out-of-fold decision values over the training corpus's speaker
folds), so on a borderline clip the most probable label can differ from the label."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpo.corpus.audio import BadAudio, to_16k_mono
from hpo.errors import HpoError
from hpo.kinds import get_kind, kind_names
from hpo.trained.train import META


def _read_clip(path: Path) -> np.ndarray:
    try:
        y, _ = to_16k_mono(path.read_bytes())
    except IsADirectoryError:
        raise HpoError(f"{path}: is a directory, not a wav file") from None
    except OSError as e:
        raise HpoError(f"{path}: cannot read ({e.strerror})") from None
    except BadAudio as e:
        raise HpoError(f"{path}: {e}") from None
    return y


def read_meta(model_dir: Path) -> dict:
    meta_path = model_dir / META
    if not meta_path.is_file():
        raise HpoError(f"{model_dir}: not a model made by 'hpo train' (no {META})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kind = meta["kind"]
        meta["config"], meta["labels"]  # noqa: B018 - present, or the file is damaged
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise HpoError(f"{meta_path}: damaged; train the model again with 'hpo train'") from None
    if kind not in kind_names():
        raise HpoError(f"{meta_path}: unknown kind {kind!r}")
    return meta


def predict(model_dir: Path, clips: list[Path]) -> dict:
    """``{"labels": [...], "random_init_model": bool, "synthetic_training_corpus": bool,
    "predicted": {path: label}, "predictions": {path: [p, ...]}}``."""
    meta = read_meta(model_dir)
    waves = [_read_clip(p) for p in clips]
    decided, probs = get_kind(meta["kind"]).classify(model_dir, meta, waves)
    if len(probs) and len(probs[0]) != len(meta["labels"]):
        # A label without a probability (or the reverse) would name every prediction wrong.
        raise HpoError(
            f"{model_dir}: the model gives {len(probs[0])} probabilities for "
            f"{len(meta['labels'])} labels; train it again with 'hpo train'"
        )
    return {
        "labels": meta["labels"],
        "random_init_model": bool(meta.get("random_init_model", False)),
        "synthetic_training_corpus": bool(meta.get("trained_on", {}).get("synthetic")),
        "predicted": {str(p): meta["labels"][int(i)] for p, i in zip(clips, decided, strict=True)},
        "predictions": {
            str(p): [float(x) for x in row] for p, row in zip(clips, probs, strict=True)
        },
    }
