"""Each trial's per-clip validation predictions, kept so that every figure about a trial
(pooled scores, per-label scores, a bootstrap over speakers, a paired test between studies)
can be computed after the fact, for any trial, without training again.

Stored as one compressed user attribute, ``clip_predictions``, rather than an Optuna
artifact: it lives in the study's own storage, so it travels with an SQLite file or a
PostgreSQL study to whoever reports on it and needs no artifact store, and it is small
(RAVDESS's 1,440 clips: about 1 KB of labels, about 15 KB with float16 probabilities). Clips
are named by their index in the corpus's manifest (the study records the manifest's hash),
so a trial's predictions are read against the corpus it was run on.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

ATTR = "clip_predictions"
FORMAT = 1
# Optuna keeps an attribute in one TEXT column, 64 KB on MySQL: past this the probabilities
# are left out (labels, clips and folds, a few KB even for CREMA-D, are always kept).
MAX_PROBA_CHARS = 48_000


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 6)).decode("ascii")


def _unpack(s: str, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(s)), dtype=dtype).reshape(shape)


@dataclass
class ClipPredictions:
    """What a trial predicted for the clips it validated, in the order they were scored."""

    clips: np.ndarray  # int64: indices into the corpus's manifest
    folds: np.ndarray  # int64: the fold each clip was validated in
    pred: np.ndarray  # int64: predicted class ids (into the study's label set)
    proba: np.ndarray | None = None  # float32 (clips, classes), where the kind has them

    def add(self, fold: int, clips: np.ndarray, pred: np.ndarray, proba: Any = None) -> None:
        """One fold's predictions, aligned with ``clips`` (the fold's validation indices)."""
        clips, pred = np.asarray(clips, np.int64), np.asarray(pred, np.int64)
        if len(clips) != len(pred):
            raise ValueError(f"fold {fold}: {len(pred)} predictions for {len(clips)} clips")
        self.clips = np.concatenate([self.clips, clips])
        self.folds = np.concatenate([self.folds, np.full(len(clips), fold, np.int64)])
        self.pred = np.concatenate([self.pred, pred])
        if proba is not None:
            p = np.asarray(proba, np.float32)
            self.proba = p if self.proba is None else np.concatenate([self.proba, p])

    @classmethod
    def empty(cls) -> ClipPredictions:
        e = np.zeros(0, np.int64)
        return cls(e, e.copy(), e.copy())

    def encode(self) -> dict[str, Any]:
        """The JSON-ready attribute value."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "n": len(self.clips),
            "clips": _pack(self.clips.astype(np.int32)),
            "folds": _pack(self.folds.astype(np.int16)),
            "pred": _pack(self.pred.astype(np.int16)),
        }
        if self.proba is not None and len(self.proba) == len(self.clips):
            packed = _pack(self.proba.astype(np.float16))
            if len(packed) <= MAX_PROBA_CHARS:
                out["classes"] = int(self.proba.shape[1])
                out["proba"] = packed
        return out

    @classmethod
    def decode(cls, attr: dict[str, Any]) -> ClipPredictions:
        n = int(attr["n"])
        proba = None
        if "proba" in attr:
            proba = _unpack(attr["proba"], np.float16, (n, int(attr["classes"]))).astype(np.float32)
        return cls(
            _unpack(attr["clips"], np.int32, (n,)).astype(np.int64),
            _unpack(attr["folds"], np.int16, (n,)).astype(np.int64),
            _unpack(attr["pred"], np.int16, (n,)).astype(np.int64),
            proba,
        )


def of_trial(trial: Any) -> ClipPredictions | None:
    """A trial's stored predictions; None for a trial without them (written by an hpo
    older than this attribute, or one that failed before its first fold ended)."""
    attr = trial.user_attrs.get(ATTR)
    if not isinstance(attr, dict) or attr.get("format") != FORMAT:
        return None
    return ClipPredictions.decode(attr)
