"""Inputs that used to end in a traceback or leave debris: each is one line, a non-zero exit,
and nothing created or changed that was not asked for."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hpo.cli import cli
from tests.helpers import write_spec


def _fails_cleanly(args: list[str], needle: str) -> str:
    res = CliRunner().invoke(cli, args)
    out = res.output.strip()
    assert res.exit_code != 0, (args, out)
    assert "Traceback" not in out and "internal error" not in out, (args, out)
    assert len(out.splitlines()) == 1, (args, out)
    assert needle in out, (args, out)
    return out


@pytest.mark.parametrize(
    "sections, needle",
    [
        ({"pruner": {"p_threshold": float("nan")}}, "'p_threshold' must be a finite number"),
        ({"budget": {"timeout": float("inf")}}, "'timeout' must be a finite number"),
        ({"space": {"C": {"type": "float", "low": float("-inf"), "high": 1.0}}}, "finite"),
        ({"space": {"kernel": {"type": "categorical", "choices": [float("nan")]}}}, "nan or inf"),
        ({"svm": {"C": -1.0}}, "C and cache_size must be positive"),
        ({"run": {"max_retry": -1}}, "'max_retry' must be >= 0"),
        ({"data": {"folds": 1}}, "'folds' must be at least 2"),
    ],
)
def test_hostile_numbers_in_a_study_file_are_refused_when_read(
    tmp_path: Path, prepared: Path, sections: dict, needle: str
) -> None:
    sections = {"data": {"corpus": str(prepared), **sections.pop("data", {})}, **sections}
    spec = write_spec(tmp_path / "bad.toml", **sections)
    db = tmp_path / "s.db"
    _fails_cleanly(["run", "--study", str(spec), "--storage", str(db)], needle)
    assert not db.exists()  # nothing created for a study that never validated


def test_a_study_asking_for_other_folds_creates_no_database(tmp_path: Path, prepared: Path) -> None:
    spec = write_spec(tmp_path / "s.toml", data={"corpus": str(prepared), "folds": 4})
    db = tmp_path / "new" / "s.db"
    _fails_cleanly(
        ["run", "--study", str(spec), "--storage", str(db)], "--folds 4', or set [data] folds = 6"
    )
    assert not db.exists()


def test_storage_paths_that_cannot_be_created(tmp_path: Path, prepared: Path) -> None:
    spec = write_spec(tmp_path / "s.toml", data={"corpus": str(prepared)})
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a folder")
    _fails_cleanly(
        ["run", "--study", str(spec), "--storage", str(a_file / "sub" / "s.db")],
        "cannot create the folder for the study database",
    )
    assert a_file.read_text() == "not a folder"
    _fails_cleanly(
        ["run", "--study", str(spec), "--storage", "sqlite:////proc/hpo-test/s.db"],
        "/proc/hpo-test",
    )


@pytest.mark.parametrize("damage", ["missing clip", "garbage clip", "bad manifest row"])
def test_a_corpus_damaged_after_preparation(tmp_path: Path, few_clips: Path, damage: str) -> None:
    # A copy of the 48-clip corpus without feature caches: the study must read every clip.
    corpus = tmp_path / "corpus"
    shutil.copytree(few_clips, corpus, ignore=shutil.ignore_patterns("cache"))
    clip = sorted((corpus / "clips").rglob("*.wav"))[5]
    if damage == "missing clip":
        clip.unlink()
        needle = clip.name
    elif damage == "garbage clip":
        clip.write_bytes(b"RIFF but not really a wav file" * 10)
        needle = clip.name
    else:
        m = corpus / "manifest.csv"
        lines = m.read_text().splitlines()
        lines[3] = "garbage,row"
        m.write_text("\n".join(lines) + "\n")
        needle = "manifest.csv:4: malformed manifest row"
    spec = write_spec(tmp_path / "s.toml", data={"corpus": str(corpus)})
    db = tmp_path / "s.db"
    out = _fails_cleanly(
        ["run", "--study", str(spec), "--storage", str(db), "--n-trials", "1"], needle
    )
    assert "hpo data prepare" in out  # says what to do


def _wav(data: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, sr, subtype=subtype, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def svm_model(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> Path:
    """A trained SVM model without speaker normalisation (single clips predict)."""
    tmp = tmp_path_factory.mktemp("svm-model")
    spec = write_spec(
        tmp / "s.toml",
        data={"corpus": str(prepared)},
        space={
            "feature_set": {"type": "categorical", "choices": ["librosa"]},
            "speaker_norm": {"type": "categorical", "choices": [False]},
        },
    )
    db = tmp / "s.db"
    r = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)]
    )
    assert r.exit_code == 0, r.output
    cfg = tmp / "best.toml"
    r = CliRunner().invoke(
        cli, ["export", "--study", "svm", "--storage", str(db), "--out", str(cfg)]
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train", "--config", str(cfg), "--out", str(tmp / "model")])
    assert r.exit_code == 0, r.output
    return tmp / "model"


def test_odd_audio_at_predict_time(tmp_path: Path, svm_model: Path) -> None:
    rng = np.random.default_rng(0)
    tone = (0.3 * np.sin(np.arange(48_000) / 48_000 * 2 * np.pi * 220)).astype(np.float32)
    cases = {
        "empty.wav": (b"", "empty file"),
        "text.wav": (b"just some words, not audio" * 40, "unreadable audio"),
        "silent.wav": (_wav(np.zeros(16_000, np.float32), 16_000), "silent"),
        "short.wav": (_wav(tone[:800], 16_000), "too short"),
        "nan.wav": (
            _wav(np.full(16_000, np.nan, np.float32), 16_000, "FLOAT"),
            "NaN or infinite",
        ),
        "cut.wav": (_wav(tone, 48_000)[:3000], "truncated"),
    }
    for name, (data, needle) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        _fails_cleanly(["predict", "--model", str(svm_model), str(p)], needle)
    _fails_cleanly(["predict", "--model", str(svm_model), str(tmp_path)], "is a directory")
    _fails_cleanly(["predict", "--model", str(svm_model), str(tmp_path / "no.wav")], "no.wav")
    # Odd but valid: 8-bit stereo at 44.1 kHz is downmixed, resampled and classified.
    stereo = np.stack([tone, rng.uniform(-0.1, 0.1, tone.size).astype(np.float32)], 1)
    ok = tmp_path / "stereo8.wav"
    ok.write_bytes(_wav(stereo, 44_100, "PCM_U8"))
    res = CliRunner().invoke(cli, ["predict", "--model", str(svm_model), str(ok), "--json"])
    assert res.exit_code == 0, res.output
    assert "stereo8.wav" in res.output


def test_a_damaged_model_directory_is_one_line(tmp_path: Path, svm_model: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(svm_model, broken)
    (broken / "hpo.json").write_text("{ not json")
    clip = tmp_path / "a.wav"
    clip.write_bytes(_wav(np.sin(np.arange(16_000) / 10).astype(np.float32) * 0.3, 16_000))
    _fails_cleanly(["predict", "--model", str(broken), str(clip)], "hpo.json: damaged")


def test_a_model_another_hpo_version_saved_is_one_line(tmp_path: Path, svm_model: Path) -> None:
    import joblib

    old = tmp_path / "model"
    shutil.copytree(svm_model, old)
    # The estimator an earlier hpo pickled: the fitted pipeline without its calibration.
    joblib.dump(joblib.load(old / "model.joblib").estimator_, old / "model.joblib")
    clip = tmp_path / "a.wav"
    clip.write_bytes(_wav(np.sin(np.arange(16_000) / 10).astype(np.float32) * 0.3, 16_000))
    _fails_cleanly(
        ["predict", "--model", str(old), str(clip)],
        "model.joblib: not a model this hpo version trains; train the model again with 'hpo train'",
    )
