"""Shared setup for the benchmark scripts: a prepared corpus to measure on."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def corpus_for_bench(corpus: str | None, workdir: Path, clips_per_actor: int = 60) -> Path:
    """``corpus`` if given (a prepared corpus, e.g. the real RAVDESS), else a fresh
    SYNTHETIC one (24 actors x ``clips_per_actor``, full size by default) under ``workdir``."""
    if corpus:
        return Path(corpus)
    from hpo.corpus.prepare import prepare
    from hpo.corpus.synth import synthesize

    src, out = workdir / "synthetic-src", workdir / "synthetic"
    if not (out / "corpus.json").is_file():
        synthesize(src, clips_per_actor=clips_per_actor)
        prepare(src, out)
    return out
