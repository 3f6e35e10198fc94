"""Session fixtures: a small synthetic corpus in the RAVDESS layout, prepared once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Nothing in the suite may reach a hub; a test that tries fails loudly instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def synth_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 actors x 16 clips (2 per emotion), 48 kHz, RAVDESS names."""
    from hpo.corpus.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "src"
    synthesize(out, actors=24, clips_per_actor=16, seed=1)
    return out


@pytest.fixture(scope="session")
def prepared(synth_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic source prepared once; tests must not modify it (copy it first)."""
    from hpo.corpus.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "corpus"
    prepare(synth_src, out)
    return out


@pytest.fixture
def prepared_copy(prepared: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "corpus"
    shutil.copytree(prepared, dst)
    return dst


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory):
    """``release(fmt, speakers, clips_per_speaker)``: a small synthetic release laid out as
    the corpus's own (EmoDB, CREMA-D, TESS, SAVEE), written once per session and size;
    tests must copy it before changing it."""
    from hpo.corpus.synth import synthesize

    made: dict[tuple[str, int, int], Path] = {}

    def make(fmt: str, speakers: int, per_speaker: int) -> Path:
        key = (fmt, speakers, per_speaker)
        if key not in made:
            out = tmp_path_factory.mktemp(f"synth-{fmt}") / "src"
            synthesize(out, speakers, per_speaker, seed=2, jobs=1, fmt=fmt)
            made[key] = out
        return made[key]

    return make
