"""``hpo data info``: what a prepared corpus holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hpo.corpus.manifest import load_corpus
from hpo.corpus.ravdess import EMOTIONS


def corpus_info(root: str | Path) -> dict[str, Any]:
    """Describe a prepared corpus as one JSON-ready object."""
    corpus = load_corpus(root)
    clips = corpus.clips
    emotions = Counter(c.emotion for c in clips)
    folds: dict[str, list[int]] = {}
    for c in clips:
        folds.setdefault(str(c.fold), [])
        if c.actor not in folds[str(c.fold)]:
            folds[str(c.fold)].append(c.actor)
    return {
        "path": str(corpus.root),
        "synthetic": corpus.synthetic,
        "clips": len(clips),
        "actors": len({c.actor for c in clips}),
        "sample_rate": int(corpus.meta["sample_rate"]),
        "channels": int(corpus.meta["channels"]),
        "hours": round(sum(c.duration for c in clips) / 3600, 3),
        "emotions": {e: emotions[e] for e in EMOTIONS if e in emotions},
        "genders": dict(sorted(Counter(c.gender for c in clips).items())),
        "folds": {k: sorted(v) for k, v in sorted(folds.items(), key=lambda kv: int(kv[0]))},
        "stereo_sources": sum(1 for c in clips if c.channels > 1),
        "manifest_hash": corpus.manifest_hash,
        "rejected": corpus.meta.get("rejected", []),
    }
