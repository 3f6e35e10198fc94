"""End to end on every corpus: a synthetic release in the corpus's own layout, with hostile
files added, prepares with exactly those files rejected (and valid odd ones kept), and a
5-trial svm study runs on it, recording the corpus's name and label set."""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
import soundfile as sf
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.corpus.prepare import prepare
from tests.helpers import RELEASE_SIZES, trial_states, write_spec

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 81920\n"


def _odd_copy(wav: Path, dst: Path, rate: int, subtype: str) -> None:
    """Other audio (so not a duplicate) in another rate, stereo, another sample format."""
    y, _ = sf.read(wav)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, np.stack([0.8 * y, 0.5 * y], axis=1), rate, subtype=subtype)


def _copy(src: Path, dst: Path, data: bytes | None = None) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes() if data is None else data)


def _emodb(s: Path) -> tuple[dict[str, str], list[str]]:
    a = s / "wav" / "03a01Na.wav"
    _copy(a, s / "wav" / "05a01Fa.wav")  # not one of EmoDB's speakers
    _copy(a, s / "wav" / "03a01Xa.wav")  # no such emotion letter
    _copy(a, s / "wav" / "03b10Wb.wav", a.read_bytes()[: len(a.read_bytes()) // 2])
    _copy(a, s / "wav" / "03b09Wb.wav")  # a valid name, the same audio as 03a01Na
    _copy(a, s / "WAV" / "03A01NA.WAV")  # the same clip id spelled in capitals
    (s / "erkennung.txt").write_text("documentation")
    _odd_copy(s / "wav" / "08a02Fa.wav", s / "wav" / "08b10Lb.wav", 22_050, "PCM_U8")
    rejected = {
        "wav/05a01Fa.wav": "speaker 05",
        "wav/03a01Xa.wav": "emotion letter X",
        "wav/03b10Wb.wav": "truncated",
        "wav/03b09Wb.wav": "same audio as WAV/03A01NA.WAV",
        "wav/03a01Na.wav": "duplicate clip id of WAV/03A01NA.WAV",
        "erkennung.txt": "not a .wav file (.txt)",
    }
    return rejected, ["clips/08/08b10Lb.wav"]


def _crema_d(s: Path) -> tuple[dict[str, str], list[str]]:
    a = next((s / "AudioWAV").glob("1001_*.wav"))
    _copy(a, s / "AudioWAV" / "1001_XYZ_ANG_XX.wav")
    _copy(a, s / "AudioWAV" / "1002_WSI_SAD_XX.wav", LFS)  # a clone without git-lfs
    _copy(a, s / "AudioWAV" / "1003_WSI_HAP_XX.wav", b"")
    _copy(a, s / "AudioMP3" / "1001_DFA_ANG_XX.mp3", b"ID3 not audio we read")
    sf.write(s / "AudioWAV" / "1004_WSI_NEU_XX.wav", np.zeros(16_000), 16_000)
    # The demographics file given with the release decides genders (1001 is a man there).
    demo = s / "VideoDemographics.csv"
    demo.write_text(demo.read_text().replace('1001,20,"Male"', '1001,20,"Female"'))
    _odd_copy(a, s / "AudioWAV" / "1002_WSI_ANG_XX.wav", 44_100, "PCM_24")
    rejected = {
        "AudioWAV/1001_XYZ_ANG_XX.wav": "sentence XYZ",
        "AudioWAV/1002_WSI_SAD_XX.wav": "git-lfs pointer",
        "AudioWAV/1003_WSI_HAP_XX.wav": "empty file",
        "AudioMP3/1001_DFA_ANG_XX.mp3": "not a .wav file (.mp3)",
        "AudioWAV/1004_WSI_NEU_XX.wav": "silent",
    }
    return rejected, ["clips/1002/1002_WSI_ANG_XX.wav"]


def _tess(s: Path) -> tuple[dict[str, str], list[str]]:
    # A copy nested inside itself, as one download of the release has it.
    nested = s / "TESS Toronto emotional speech set data" / "OAF_angry"
    shutil.copytree(s / "OAF_angry", nested)
    a = next((s / "OAF_angry").glob("*.wav"))
    _copy(a, s / "OAF_angry" / "OAF_back_bored.wav")
    (s / "README.md").write_text("TESS")
    _odd_copy(a, s / "YAF_pleasant_surprised" / "YAF_zebra_pleasant_surprised.wav", 48_000, "FLOAT")
    rejected = {
        f"TESS Toronto emotional speech set data/OAF_angry/{p.name}": "duplicate clip id of"
        for p in nested.glob("*.wav")
    }
    rejected |= {"OAF_angry/OAF_back_bored.wav": "emotion 'bored'", "README.md": "(.md)"}
    return rejected, ["clips/YAF/YAF_zebra_ps.wav"]


def _savee(s: Path) -> tuple[dict[str, str], list[str]]:
    a = s / "AudioData" / "DC" / "n01.wav"
    _copy(a, s / "AudioData" / "XX" / "a01.wav")
    _copy(a, s / "AudioData" / "DC" / "b01.wav")
    _copy(a, s / "ALL" / "DC_n01.wav")  # the flattened copy's name for the same clip
    _odd_copy(
        s / "AudioData" / "JE" / "h02.wav", s / "AudioData" / "JE" / "D15.WAV", 8_000, "PCM_16"
    )
    rejected = {
        "AudioData/Info.txt": "not a .wav file (.txt)",
        "AudioData/XX/a01.wav": "no speaker",
        "AudioData/DC/b01.wav": "name does not parse",
        "AudioData/DC/n01.wav": "duplicate clip id of ALL/DC_n01.wav",
    }
    return rejected, ["clips/JE/d15.wav"]


HOSTILE: dict[str, Callable[[Path], tuple[dict[str, str], list[str]]]] = {
    "emodb": _emodb,
    "crema-d": _crema_d,
    "tess": _tess,
    "savee": _savee,
}
RULE = {"emodb": 3, "crema-d": "loso", "tess": "loso", "savee": "loso"}


def _cli(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def _run_study(work: Path, corpus: Path, rule: int | str, n: int = 5) -> Path:
    """``hpo run --study svm --data CORPUS --n-trials n`` on librosa features; the database."""
    spec = write_spec(
        work / "svm.toml",
        data={"folds": rule},
        # On 3 folds no Wilcoxon threshold below 0.25 can stop a trial (the study is refused)
        pruner={"type": "none"} if rule == 3 else {},
        sampler={"n_startup_trials": 3},
        space={"feature_set": {"type": "categorical", "choices": ["librosa"]}},
    )
    db = work / "s.db"
    _cli(
        "run",
        "--study",
        str(spec),
        "--data",
        str(corpus),
        "--n-trials",
        str(n),
        "--storage",
        str(db),
    )
    return db


@pytest.fixture(scope="module")
def studied(release, tmp_path_factory: pytest.TempPathFactory):
    """``studied(fmt)``: the hostile release, its prepare report, the corpus and the 5-trial
    study's database, made once per corpus for the tests of this module."""
    # Loaded here, so the feature workers forked for each study start with it.
    import librosa  # noqa: F401

    made: dict[str, tuple] = {}

    def make(fmt: str) -> tuple[dict[str, str], list[str], object, Path, Path]:
        if fmt not in made:
            work = tmp_path_factory.mktemp(fmt)
            src = work / "src"
            shutil.copytree(release(fmt, *RELEASE_SIZES[fmt]), src)
            expected, kept = HOSTILE[fmt](src)
            folds = RULE[fmt] if fmt == "emodb" else None  # the default: loso under 6 speakers
            r = prepare(src, work / fmt, n_folds=folds, jobs=1)
            made[fmt] = (expected, kept, r, work / fmt, _run_study(work, work / fmt, RULE[fmt]))
        return made[fmt]

    return make


@pytest.mark.parametrize("fmt", list(HOSTILE))
def test_a_release_prepares_with_its_rejects_and_a_study_runs_on_it(fmt: str, studied) -> None:
    expected, kept, r, corpus_dir, db = studied(fmt)
    got = {x["file"]: x["reason"] for x in r.rejected}
    assert set(got) == set(expected), got
    for f, why in expected.items():
        assert why in got[f], (f, got[f])
    corpus = load_corpus(corpus_dir)
    by_path = {c.path: c for c in corpus.clips}
    for path in kept:  # odd but valid audio is prepared, with its source's rate and channels
        assert by_path[path].channels == 2 and by_path[path].sample_rate != 16_000
    assert corpus.name == fmt and corpus.fold_rule == RULE[fmt]
    if fmt == "crema-d":
        assert corpus.speaker_genders[1001] == "female"  # from the release's demographics

    states = trial_states(db)
    assert len(states) == 5 and {s for _, s in states} <= {"COMPLETE", "PRUNED"}
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    n_folds = len({c.fold for c in corpus.clips})
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    # The first trial has no best to be compared with, so it is never pruned; the pruner
    # may stop any later one (start-up trials included).
    assert complete and complete[0].number == 0
    for t in complete:
        folds = t.user_attrs["fold_uar"]
        # A trial's value is the mean UAR over all folds, every clip validated once.
        assert len(folds) == n_folds and t.value == pytest.approx(np.mean(folds), abs=1e-6)
        cm = np.array(t.user_attrs["confusion"])
        assert cm.shape == (len(corpus.labels),) * 2 and cm.sum() == len(corpus.clips)
    attrs = study.user_attrs
    assert attrs["labels"] == list(corpus.labels) and attrs["corpus_name"] == fmt
    # The dashboard's trial notes name the corpus's classes (notes live in system attrs).
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    notes = storage.get_study_system_attrs(storage.get_study_id_from_name("svm")).values()
    header = "| true \\ predicted | " + " | ".join(corpus.labels) + " |"
    assert sum(header in str(v) for v in notes) == len(study.trials)
    assert attrs["fold_rule"] == RULE[fmt]
    held_out = sorted(str(s) for f in attrs["fold_actors"].values() for s in f)
    assert held_out == sorted(str(s) for s in corpus.speaker_genders)
    info = json.loads(_cli("data", "info", str(corpus_dir), "--json"))
    assert info["labels"] == list(corpus.labels) and info["name"] == fmt


def test_a_seven_label_model_predicts_those_seven(studied, prepared: Path, tmp_path: Path) -> None:
    """EmoDB: export, train and predict carry the label set."""
    _, _, _, corpus_dir, db = studied("emodb")
    labels = list(load_corpus(corpus_dir).labels)
    assert labels == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "bored"]
    cfg = tmp_path / "best.toml"
    _cli("export", "--study", "svm", "--storage", str(db), "--out", str(cfg))
    _cli("train", "--config", str(cfg), "--out", str(tmp_path / "model"))
    clips = [str(p) for p in sorted((corpus_dir / "clips" / "03").glob("*.wav"))] * 2
    # A speaker-normalised choice takes its statistics from the given clips of speaker 03.
    norm = tomllib.loads(cfg.read_text())["config"]["features"]["speaker_norm"]
    given = ["--speaker-norm-from", "given"] if norm != "off" else []
    doc = json.loads(_cli("predict", "--model", str(tmp_path / "model"), *clips, *given, "--json"))
    assert doc["labels"] == labels
    assert all(
        len(p) == 7 and sum(p) == pytest.approx(1.0, abs=1e-4) for p in doc["predictions"].values()
    )
    # A corpus with another label set is not what the configuration was searched for.
    res = CliRunner().invoke(cli, ["train", "--config", str(cfg), "--data", str(prepared)])
    assert res.exit_code == 2 and "the study classified neutral, happy" in res.output


def test_a_csv_corpus_with_loso_folds_and_nested_cv(release, tmp_path: Path) -> None:
    """Speakers named by strings, leave-one-speaker-out folds in a study and, inside each
    outer fold of nested CV, over the training speakers."""
    src = release("savee", *RELEASE_SIZES["savee"])
    rows = ["path,speaker,label"]  # absolute paths; three speakers
    wavs = [p for p in sorted(src.rglob("*.wav")) if p.parent.name != "KL"]
    rows += [f"{p.as_posix()},{p.parent.name},{p.stem[:-2]}" for p in wavs]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    corpus_dir = tmp_path / "c"
    _cli(
        "data",
        "prepare",
        "--manifest",
        str(tmp_path / "list.csv"),
        "--out",
        str(corpus_dir),
        "--folds",
        "loso",
        "--jobs",
        "1",
    )
    corpus = load_corpus(corpus_dir)
    db = _run_study(tmp_path, corpus_dir, "loso")
    assert len(trial_states(db)) == 5
    storage = f"sqlite:///{db}"
    study = optuna.load_study(study_name="svm", storage=storage)
    assert study.user_attrs["labels"] == ["a", "d", "f", "h", "n", "sa", "su"]
    assert study.user_attrs["fold_actors"] == {"0": ["DC"], "1": ["JE"], "2": ["JK"]}
    spec = tmp_path / "svm.toml"
    args = ["nested", "--study", str(spec), "--data", str(corpus_dir), "--inner-trials", "1"]
    res = CliRunner().invoke(cli, [*args, "--storage", str(db), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert sorted(a for o in doc["outer"] for a in o["actors"]) == ["DC", "JE", "JK"]
    for o in doc["outer"]:
        inner = optuna.load_study(study_name=f"svm.nested-{o['fold']}", storage=storage)
        # Leave one speaker out over the two training speakers.
        folds = inner.user_attrs["inner_fold_actors"]
        assert sorted(folds.values()) == [
            [a] for a in sorted({"DC", "JE", "JK"} - set(o["actors"]))
        ]
        assert inner.user_attrs["labels"] == list(corpus.labels)
