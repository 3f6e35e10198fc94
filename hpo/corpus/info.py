"""``hpo data info``: what a prepared corpus holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hpo.corpus.folds import fold_members, speaker_key
from hpo.corpus.manifest import load_corpus


def corpus_info(root: str | Path) -> dict[str, Any]:
    """Describe a prepared corpus as one JSON-ready object."""
    corpus = load_corpus(root)
    clips = corpus.clips
    per_label = Counter(c.label for c in clips)
    speakers = corpus.speaker_genders
    fold_of = {s.item(): c.fold for s, c in zip(corpus.speakers, clips, strict=True)}
    return {
        "name": corpus.name,
        "path": str(corpus.root),
        "synthetic": corpus.synthetic,
        "clips": len(clips),
        "labels": list(corpus.labels),
        "speakers": len(speakers),
        "speaker_genders": {
            str(s): g or "unknown"
            for s, g in sorted(speakers.items(), key=lambda x: speaker_key(x[0]))
        },
        "sample_rate": int(corpus.meta["sample_rate"]),
        "channels": int(corpus.meta["channels"]),
        "hours": round(sum(c.duration for c in clips) / 3600, 3),
        # In class order; a label no clip has is left out.
        "clips_per_label": {e: per_label[e] for e in corpus.labels if e in per_label},
        "genders": dict(sorted(Counter(c.gender or "unknown" for c in clips).items())),
        "fold_rule": corpus.fold_rule,
        "fold_unit": corpus.meta.get("fold_unit", "speaker"),
        "folds_from": corpus.meta.get("folds_from"),  # a published split's table and hash
        "folds": {str(k): v for k, v in fold_members(fold_of).items()},
        "source_sample_rates": dict(sorted(Counter(c.sample_rate for c in clips).items())),
        "stereo_sources": sum(1 for c in clips if c.channels > 1),
        "manifest_hash": corpus.manifest_hash,
        "rejected": corpus.meta.get("rejected", []),
    }
