"""A re-prepare is all or nothing: killed at any point, or refused after decoding, it leaves
every byte of the old corpus as it was; the next one swaps the new corpus in whole."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hpo.corpus import manifest as manifest_mod
from hpo.corpus import prepare as prepare_mod
from hpo.corpus.manifest import load_corpus
from hpo.corpus.prepare import prepare
from hpo.errors import CorpusError

FOLDS = 4
CACHE = "cache/features/mfcc-0123.npy"  # stands for what a study wrote into the corpus


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hpo.corpus.synth import synthesize

    src = tmp_path_factory.mktemp("atomic") / "src"
    synthesize(src, actors=4, clips_per_actor=8, seed=5, jobs=1)
    return src


@pytest.fixture
def old(source: Path, tmp_path: Path) -> tuple[Path, Path]:
    """An existing corpus with a feature cache, and its source with half the audio changed
    since (so a re-prepare both reuses clips and writes new ones)."""
    src, out = tmp_path / "src", tmp_path / "corpus"
    shutil.copytree(source, src)
    prepare(src, out, n_folds=FOLDS, jobs=1)
    (out / CACHE).parent.mkdir(parents=True)
    (out / CACHE).write_bytes(b"features of the old manifest")
    for p in sorted(src.rglob("*.wav"))[::2]:
        y, sr = sf.read(p)
        sf.write(p, y * 0.8, sr)
    return src, out


def _bytes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _killed(src: Path, out: Path, arm: Callable[[pytest.MonkeyPatch], None]) -> None:
    """Run a re-prepare in a forked child that ``arm`` makes SIGKILL itself part-way: no
    ``finally`` or ``except`` runs, as when the machine or the OOM killer stops it."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with pytest.MonkeyPatch.context() as mp:
                arm(mp)
                prepare(src, out, n_folds=FOLDS, jobs=1)
        finally:
            os._exit(3)  # not killed: the hook never fired
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def _die(*_a: object, **_k: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _die_on_write(n: int) -> Callable[[pytest.MonkeyPatch], None]:
    def arm(mp: pytest.MonkeyPatch) -> None:
        calls = [0]
        real = prepare_mod.sf.write

        def write(path, *a, **k):  # noqa: ANN001, ANN202
            calls[0] += 1
            if calls[0] == n:
                Path(path).write_bytes(b"RIFF half a clip")
                _die()
            return real(path, *a, **k)

        mp.setattr(prepare_mod.sf, "write", write)

    return arm


KILL_POINTS = {
    "first clip decoded": _die_on_write(1),
    "mid-decoding": _die_on_write(8),
    "after decoding, before the manifest": lambda mp: mp.setattr(
        manifest_mod, "write_text_atomic", _die
    ),
    "after the manifest, before corpus.json": lambda mp: mp.setattr(
        manifest_mod, "write_json_atomic", _die
    ),
    "during the swap": lambda mp: mp.setattr(prepare_mod, "exchange", _die),
}


def _assert_new_corpus_replaces_it(src: Path, out: Path, old_hash: str, tmp: Path) -> None:
    r = prepare(src, out, n_folds=FOLDS, jobs=1)
    new = load_corpus(out)
    assert new.manifest_hash != old_hash
    assert r.written == 16 and r.reused == 16
    assert (out / CACHE).read_bytes() == b"features of the old manifest"
    assert sorted(p.name for p in tmp.iterdir()) == ["corpus", "src"]  # no leftovers beside


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_re_prepare_killed_part_way_leaves_the_old_corpus_byte_for_byte(
    old: tuple[Path, Path], tmp_path: Path, point: str
) -> None:
    src, out = old
    before, old_hash = _bytes(out), load_corpus(out).manifest_hash
    _killed(src, out, KILL_POINTS[point])
    assert _bytes(out) == before
    assert load_corpus(out).manifest_hash == old_hash
    _assert_new_corpus_replaces_it(src, out, old_hash, tmp_path)


def _silence_a_speaker(src: Path) -> None:
    """Four folds fit the four speakers named, not the three left once one's audio is bad."""
    for p in (src / "Actor_04").glob("*.wav"):
        p.unlink()
        sf.write(p, np.zeros(48_000, dtype=np.float32), 48_000)  # silent: rejected


def test_a_late_refusal_leaves_the_old_corpus_byte_for_byte(
    old: tuple[Path, Path], tmp_path: Path
) -> None:
    src, out = old
    before = _bytes(out)
    _silence_a_speaker(src)
    with pytest.raises(CorpusError, match="4 folds"):
        prepare(src, out, n_folds=FOLDS, jobs=1)
    assert _bytes(out) == before
    load_corpus(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "src"]


def test_killed_just_after_the_swap_the_new_corpus_is_in_and_keeps_its_caches(
    old: tuple[Path, Path], tmp_path: Path
) -> None:
    src, out = old
    old_hash = load_corpus(out).manifest_hash
    _killed(src, out, lambda mp: mp.setattr(prepare_mod, "_retire", _die))
    assert load_corpus(out).manifest_hash != old_hash  # the complete new corpus
    assert prepare(src, out, n_folds=FOLDS, jobs=1).written == 0  # nothing changed since
    assert (out / CACHE).read_bytes() == b"features of the old manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "src"]


def test_without_an_atomic_exchange_a_kill_between_the_renames_is_undone(
    old: tuple[Path, Path], tmp_path: Path
) -> None:
    """Where the file system cannot swap two directories in one step, the old corpus moves
    aside first; killed there, the next prepare puts it back before anything else (here it
    then refuses after decoding, so what it put back is what stays)."""
    src, out = old
    before = _bytes(out)

    def arm(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(prepare_mod, "exchange", lambda a, b: False)
        real, calls = os.rename, [0]

        def rename(a, b):  # noqa: ANN001, ANN202
            calls[0] += 1
            real(a, b)
            if calls[0] == 1:
                _die()

        mp.setattr(prepare_mod.os, "rename", rename)

    _killed(src, out, arm)
    assert not out.exists()
    _silence_a_speaker(src)
    with pytest.raises(CorpusError, match="4 folds"):
        prepare(src, out, n_folds=FOLDS, jobs=1)
    assert _bytes(out) == before
    load_corpus(out)


def test_a_full_disk_at_the_manifest_is_one_line_and_changes_nothing(
    old: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from hpo.cli import cli

    src, out = old
    before = _bytes(out)

    def no_space(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(manifest_mod, "write_text_atomic", no_space)
    res = CliRunner().invoke(
        cli, ["data", "prepare", str(src), "--out", str(out), "--folds", "4", "--jobs", "1"]
    )
    assert res.exit_code == 2, res.output
    assert res.output.strip() == (
        f"hpo: error: {out}: cannot write (No space left on device); "
        "the existing corpus there is unchanged"
    )
    assert _bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "src"]


def test_a_clip_an_earlier_hpo_left_rewritten_under_its_old_row_is_decoded_again(
    old: tuple[Path, Path], tmp_path: Path
) -> None:
    """Earlier versions rewrote clips in place: one killed part-way left other audio under an
    unchanged manifest row. Such a clip is not reused as if its source's hash vouched for it."""
    src, out = old
    corpus = load_corpus(out)
    unchanged = sorted(src.rglob("*.wav"))[1]  # the fixture changed every other one
    clip = next(c for c in corpus.clips if c.source == unchanged.relative_to(src).as_posix())
    sf.write(out / clip.path, np.full(8_000, 0.1, dtype=np.float32), 16_000)
    r = prepare(src, out, n_folds=FOLDS, jobs=1)
    assert (r.written, r.reused) == (17, 15)
    fresh = prepare(src, tmp_path / "fresh", n_folds=FOLDS, jobs=1)
    assert (out / clip.path).read_bytes() == (tmp_path / "fresh" / clip.path).read_bytes()
    assert load_corpus(out).manifest_hash == load_corpus(fresh.out).manifest_hash
