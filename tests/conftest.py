"""Session fixtures: a small synthetic corpus in the RAVDESS layout, prepared once, with the
SVM feature caches built once; tests only read them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# The session-scoped headless Chromium (``chromium``) of the browser tests.
pytest_plugins = ["tests.browser"]

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


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``root``."""
    files = {}
    for p in root.rglob("*"):
        if p.is_file():
            st = p.stat()
            files[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return files


@pytest.fixture(scope="session")
def prepared(synth_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The synthetic source prepared once, with librosa's features (the set of every test
    study that is not about feature sets, ``helpers.ONE_FEATURE_SET``) already extracted into
    its cache, so no test pays for them or writes them, whatever the order. Tests of the
    openSMILE sets take ``few_clips``. Read-only: a test that needs to change it takes
    ``prepared_copy``; at the end of the session, any file written, changed or removed here
    is an error."""
    from hpo.corpus.manifest import load_corpus
    from hpo.corpus.prepare import prepare
    from hpo.kinds import get_kind, load_spec
    from tests.helpers import ONE_FEATURE_SET, write_spec

    out = tmp_path_factory.mktemp("prepared") / "corpus"
    prepare(synth_src, out)
    one_set = write_spec(tmp_path_factory.mktemp("spec") / "svm.toml", space=ONE_FEATURE_SET)
    get_kind("svm").prepare(load_spec(one_set), load_corpus(out))
    before = _files(out)
    yield out
    after = _files(out)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests wrote into the session corpus {out}: {changed[:5]}"


@pytest.fixture(scope="session")
def few_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-clip corpus (6 actors, one clip per emotion, six folds of one actor): where a
    test extracts every feature set, openSMILE's ComParE included, it pays for 48 clips,
    not 384. Tests may add feature caches to it, nothing else."""
    from hpo.corpus.prepare import prepare
    from hpo.corpus.synth import synthesize

    root = tmp_path_factory.mktemp("few")
    synthesize(root / "src", actors=6, clips_per_actor=8, seed=3)
    prepare(root / "src", root / "corpus")
    return root / "corpus"


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
