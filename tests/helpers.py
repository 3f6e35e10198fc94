"""Shared test helpers: study files written from the shipped ones with a few changes."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from hpo.corpus.formats._base import SynthClip
from hpo.corpus.formats.ravdess import SAMPLE_RATE, ClipId
from hpo.corpus.synth import render

ROOT = Path(__file__).resolve().parents[1]

# The [space] change for tests about processes (kills, workers, PostgreSQL) rather than
# features: one feature set, the cheapest trials that still run the whole pipeline.
ONE_FEATURE_SET = {"feature_set": {"type": "categorical", "choices": ["librosa"]}}


def write_spec(dst: Path, base: str = "svm", **sections: dict[str, Any]) -> Path:
    """Copy ``studies/BASE.toml`` to ``dst`` with the given sections updated (None deletes)."""
    raw = tomllib.loads((ROOT / "studies" / f"{base}.toml").read_text())
    for key, value in sections.items():
        if value is None:
            raw.pop(key, None)
        elif isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    dst.write_text(tomli_w.dumps(raw))
    return dst


def trial_states(db: Path, study: str | None = None) -> list[tuple[int, str]]:
    """(number, state) of every trial, read straight from the SQLite file."""
    con = sqlite3.connect(db)
    try:
        q = (
            "SELECT t.number, t.state FROM trials t JOIN studies s ON s.study_id = t.study_id"
            + (" WHERE s.study_name = ?" if study else "")
            + " ORDER BY t.number"
        )
        return [(n, s) for n, s in con.execute(q, (study,) if study else ())]
    finally:
        con.close()


# Small synthetic releases the corpus tests share (speakers, clips per speaker): every label
# of the corpus for each speaker, few clips, so a 5-trial study on each takes seconds.
RELEASE_SIZES = {"emodb": (6, 7), "crema-d": (4, 6), "tess": (2, 14), "savee": (4, 7)}


def synth_clip(cid: ClipId, seed: int = 0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One synthetic RAVDESS clip, rendered as ``hpo data synth`` renders it (float32 mono)."""
    clip = SynthClip(
        cid.filename,
        cid.actor,
        cid.gender == "male",
        cid.emotion_label,
        cid.intensity,
        statement=cid.statement,
        take=cid.repetition,
    )
    return render(clip, seed, sr)
