from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus import prepare as prepare_mod
from hpo.corpus.formats.ravdess import EMOTIONS
from hpo.corpus.manifest import load_corpus
from hpo.corpus.prepare import prepare


def _messy_source(synth_src: Path, root: Path) -> tuple[Path, dict[str, str]]:
    """Four good actors plus one of every kind of bad input; returns expected reasons."""
    src = root / "src"
    for a in (1, 2, 3, 4):
        shutil.copytree(synth_src / f"Actor_{a:02d}", src / f"Actor_{a:02d}")
    a1 = src / "Actor_01"
    good = sorted(a1.glob("*.wav"))[0]
    data = good.read_bytes()
    (a1 / "03-01-02-01-01-01-01.wav").unlink(missing_ok=True)
    (a1 / "03-01-02-01-01-01-01.wav").write_bytes(data[: len(data) // 2])  # truncated
    (a1 / "03-01-03-01-01-01-01.wav").unlink(missing_ok=True)
    (a1 / "03-01-03-01-01-01-01.wav").write_bytes(b"")  # empty
    (a1 / "03-01-04-01-01-01-01.wav").unlink(missing_ok=True)
    (a1 / "03-01-04-01-01-01-01.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    (a1 / "notes-about-actor.wav").write_bytes(data)
    (a1 / "03-02-05-01-01-01-01.wav").write_bytes(data)  # song
    (a1 / "01-01-05-01-01-01-01.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (a1 / "02-01-05-01-01-01-01.wav").write_bytes(data)  # video-only modality
    (a1 / "README.txt").write_text("hello")
    dup_dir = src / "copy" / "Actor_01"
    dup_dir.mkdir(parents=True)
    shutil.copy(good, dup_dir / good.name)  # same clip id twice
    # Same audio under another clip id (actor 02's name, actor 01's audio).
    (src / "Actor_02" / "03-01-08-02-02-02-02.wav").write_bytes(data)
    silent = np.zeros(48_000, dtype=np.float32)
    (src / "Actor_03" / "03-01-06-01-01-01-03.wav").unlink(missing_ok=True)
    sf.write(src / "Actor_03" / "03-01-06-01-01-01-03.wav", silent, 48_000)
    # OS litter is not an input at all.
    (src / ".DS_Store").write_bytes(b"junk")
    (src / "__MACOSX").mkdir()
    (src / "__MACOSX" / "._03-01-01-01-01-01-01.wav").write_bytes(b"junk")
    expected = {
        "Actor_01/03-01-02-01-01-01-01.wav": "truncated",
        "Actor_01/03-01-03-01-01-01-01.wav": "empty file",
        "Actor_01/03-01-04-01-01-01-01.wav": "",
        "Actor_01/notes-about-actor.wav": "name does not parse",
        "Actor_01/03-02-05-01-01-01-01.wav": "song clip",
        "Actor_01/01-01-05-01-01-01-01.mp4": "video file",
        "Actor_01/02-01-05-01-01-01-01.wav": "video modality",
        "Actor_01/README.txt": "not a .wav file",
        f"copy/Actor_01/{good.name}": "duplicate clip id",
        "Actor_02/03-01-08-02-02-02-02.wav": "same audio as",
        "Actor_03/03-01-06-01-01-01-03.wav": "silent",
    }
    return src, expected


def test_every_bad_input_is_listed_with_its_reason(synth_src: Path, tmp_path: Path) -> None:
    src, expected = _messy_source(synth_src, tmp_path)
    r = prepare(src, tmp_path / "out", n_folds=2, jobs=2)
    got = {x["file"]: x["reason"] for x in r.rejected}
    assert set(got) == set(expected)
    for f, why in expected.items():
        assert why in got[f], (f, got[f])
    # The truncated file is caught by its header, not passed as a short clip.
    assert "declares" in got["Actor_01/03-01-02-01-01-01-01.wav"]
    good = {c.path for c in r.clips}
    assert not any("03-01-02-01-01-01-01" in p for p in good)
    # Every file is either a clip or a rejected input; OS litter is neither.
    members = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    members -= {".DS_Store", "__MACOSX/._03-01-01-01-01-01-01.wav"}
    assert {c.source for c in r.clips} == members - set(got)
    corpus = load_corpus(tmp_path / "out")
    assert len(corpus.clips) == len(r.clips)
    assert corpus.meta["rejected"] == r.rejected
    # No output file for a rejected input and none left over beyond the manifest.
    written = {
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.wav")
    }
    assert written == good


def test_zip_and_folder_give_the_same_corpus(synth_src: Path, tmp_path: Path) -> None:
    src, _ = _messy_source(synth_src, tmp_path)
    zpath = tmp_path / "Audio_Speech_Actors_01-24.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(src).as_posix())
    a = prepare(src, tmp_path / "a", n_folds=2, jobs=1)
    b = prepare(zpath, tmp_path / "b", n_folds=2, jobs=2)
    assert [c.source_sha256 for c in a.clips] == [c.source_sha256 for c in b.clips]
    assert a.rejected == b.rejected


def test_output_is_16k_mono_and_stereo_and_other_rates_are_converted(tmp_path: Path) -> None:
    src = tmp_path / "src" / "Actor_01"
    src.mkdir(parents=True)
    t = np.arange(48_000) / 48_000
    left, right = 0.5 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 440 * t)
    sf.write(src / "03-01-01-01-01-01-01.wav", np.stack([left, right], 1), 48_000)
    sf.write(src / "03-01-01-01-01-02-01.wav", left[:44_100], 44_100)
    sf.write(src / "03-01-01-01-02-01-02.wav", left, 48_000)
    sf.write(src / "03-01-01-01-02-02-02.wav", left, 48_000)
    r = prepare(tmp_path / "src", tmp_path / "out", n_folds=2, jobs=1)
    by_name = {Path(c.path).name: c for c in r.clips}
    stereo = by_name["03-01-01-01-01-01-01.wav"]
    assert stereo.channels == 2
    y, sr = sf.read(tmp_path / "out" / stereo.path)
    assert sr == 16_000 and y.ndim == 1 and len(y) == 16_000
    # Downmixed: the mean of both channels, not the left one alone.
    assert np.max(np.abs(y)) == pytest.approx(0.3, abs=0.05)
    y2, sr2 = sf.read(tmp_path / "out" / by_name["03-01-01-01-01-02-01.wav"].path)
    assert sr2 == 16_000 and len(y2) == 16_000


def test_rerun_skips_unchanged_clips_and_redoes_changed_ones(
    synth_src: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    for a in (1, 2):
        shutil.copytree(synth_src / f"Actor_{a:02d}", src / f"Actor_{a:02d}")
    first = prepare(src, tmp_path / "out", n_folds=2, jobs=2)
    assert first.written == 32 and first.reused == 0
    again = prepare(src, tmp_path / "out", n_folds=2, jobs=2)
    assert again.written == 0 and again.reused == 32
    victim = sorted((src / "Actor_02").glob("*.wav"))[3]
    y, sr = sf.read(victim)
    sf.write(victim, y * 0.5, sr)
    third = prepare(src, tmp_path / "out", n_folds=2, jobs=2)
    assert third.written == 1 and third.reused == 31
    changed = next(c for c in third.clips if Path(c.path).name == victim.name)
    assert (
        changed.source_sha256
        != next(c for c in first.clips if Path(c.path).name == victim.name).source_sha256
    )


def test_interrupted_run_leaves_no_half_written_file_and_keeps_old_corpus(
    synth_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    for a in (1, 2):
        shutil.copytree(synth_src / f"Actor_{a:02d}", src / f"Actor_{a:02d}")
    out = tmp_path / "out"
    prepare(src, out, n_folds=2, jobs=1)
    manifest_before = (out / "manifest.csv").read_bytes()
    for p in src.rglob("*.wav"):  # force every clip to be rewritten
        y, sr = sf.read(p)
        sf.write(p, y * 0.9, sr)
    calls = {"n": 0}
    real_write = prepare_mod.sf.write

    def dying_write(path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            Path(path).write_bytes(b"RIFF half")  # half a file, then the power goes
            raise KeyboardInterrupt
        return real_write(path, *a, **k)

    monkeypatch.setattr(prepare_mod.sf, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        prepare(src, out, n_folds=2, jobs=1)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert (out / "manifest.csv").read_bytes() == manifest_before
    for p in out.rglob("*.wav"):
        sf.info(p)  # every clip on disk is a complete wav


def test_nothing_usable_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "song.wav").write_bytes(b"")
    (src / "03-02-01-01-01-01-01.wav").write_bytes(b"x")
    res = CliRunner().invoke(cli, ["data", "prepare", str(src), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert "no usable speech clip" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o" / "manifest.csv").exists()


@pytest.mark.parametrize("make", ["missing", "notzip", "empty"])
def test_bad_source_paths(tmp_path: Path, make: str) -> None:
    p = tmp_path / "x"
    if make == "notzip":
        p.write_text("not a zip")
    elif make == "empty":
        p.mkdir()
    res = CliRunner().invoke(cli, ["data", "prepare", str(p), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    line = res.output.strip()
    assert line.startswith("hpo: error: ") and str(p) in line and "\n" not in line


def test_synthetic_corpus_prepares_to_the_release_shape(prepared: Path) -> None:
    res = CliRunner().invoke(cli, ["data", "info", str(prepared), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["clips"] == 24 * 16 and info["speakers"] == 24
    assert info["sample_rate"] == 16_000 and info["channels"] == 1
    assert info["synthetic"] is True
    # Clips per label in class order, under one name (no RAVDESS-era duplicates).
    assert info["clips_per_label"] == dict.fromkeys(EMOTIONS, 48)
    assert not {"actors", "emotions"} & set(info)
    assert info["folds"] == {str(f): [4 * f + 1, 4 * f + 2, 4 * f + 3, 4 * f + 4] for f in range(6)}
    assert info["rejected"] == []


def test_info_on_a_directory_that_is_not_a_corpus(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["data", "info", str(tmp_path)])
    assert res.exit_code == 2 and "not a prepared corpus" in res.output


def test_header_slack_is_not_truncation_but_a_cut_file_is() -> None:
    import io

    from hpo.corpus.audio import riff_truncation

    buf = io.BytesIO()
    sf.write(buf, np.zeros(48_000, dtype=np.float32) + 0.1, 48_000, subtype="PCM_16", format="WAV")
    data = buf.getvalue()
    assert riff_truncation(data) is None
    assert riff_truncation(data[:-10]) is None  # a few bytes short: header slack, readable
    assert "truncated" in riff_truncation(data[: len(data) // 2])
