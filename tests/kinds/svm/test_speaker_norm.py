"""Speaker normalisation as a named mode: which clips' statistics normalise which clip
(enrolment never uses the scored clip), the modes recorded on the study's trials and named
beside the score by ``hpo status`` and the report; old ``true`` / ``false`` still read."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
import tomli_w
from click.testing import CliRunner

from hpo.cli import cli
from hpo.errors import HpoError, SpecError
from hpo.kinds import load_spec
from hpo.kinds.speaker_norm import SpeakerNorm, standardise, stats_groups
from tests.helpers import ONE_FEATURE_SET, write_spec

LABELS = ["neutral", "calm", "happy", "sad"]


def _speakers(n_speakers: int = 3, per: int = 16) -> tuple[np.ndarray, list[str]]:
    """Speakers interleaved (clip i is speaker i % n), labels cycling within a speaker."""
    speakers = np.arange(n_speakers * per) % n_speakers
    labels = [LABELS[(i // n_speakers) % len(LABELS)] for i in range(len(speakers))]
    return speakers, labels


def _check_partition(groups, speakers: np.ndarray) -> None:
    scored = np.concatenate([s for s, _ in groups])
    # Every clip is scored exactly once (so every mode scores the same clips) ...
    assert sorted(scored.tolist()) == list(range(len(speakers)))
    for s, stats in groups:
        # ... by statistics of its own speaker only.
        assert len(set(speakers[np.concatenate([s, stats])].tolist())) == 1


@pytest.mark.parametrize("clips", [8, 0.25], ids=["count", "share"])
def test_enrolment_statistics_never_include_the_scored_clip(clips: int | float) -> None:
    speakers, labels = _speakers()
    groups = stats_groups(SpeakerNorm("enrolment", "clips", clips), speakers, labels)
    _check_partition(groups, speakers)
    for scored, stats in groups:
        # The rule: the scored clip never enters its own statistics ...
        assert not set(scored.tolist()) & set(stats.tolist())
        # ... and every clip's statistics have the same number of clips (16 x 0.25 = 4).
        assert len(stats) == (8 if clips == 8 else 4)
    # The enrolment set is a label-blind fixed draw, not the speaker's first clips (a
    # manifest sorted by emotion would make those one emotion).
    first = next(stats for scored, stats in groups if len(scored) > 1)
    assert len({labels[i] for i in first}) > 1
    # Fixed: the same groups every time (the same in every fold and trial).
    again = stats_groups(SpeakerNorm("enrolment", "clips", clips), speakers, labels)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(groups, again, strict=True))


def test_neutral_enrolment_uses_other_neutral_clips_only() -> None:
    speakers, labels = _speakers()
    groups = stats_groups(SpeakerNorm("enrolment", "neutral"), speakers, labels)
    _check_partition(groups, speakers)
    for scored, stats in groups:
        assert {labels[i] for i in stats} == {"neutral"}
        assert not set(scored.tolist()) & set(stats.tolist())
        # 4 neutral clips per speaker: each clip's statistics have 3, whatever its label.
        assert len(stats) == 3
    # Centred on the other neutral clips' mean, not divided by their (small) spread.
    norm = SpeakerNorm("enrolment", "neutral")
    X = np.random.default_rng(0).normal(size=(len(speakers), 4))
    Z = standardise(X, groups, norm.scales)
    for scored, stats in groups:
        assert np.allclose(Z[scored], X[scored] - X[stats].mean(0))


def test_transductive_statistics_are_all_of_the_speakers_clips() -> None:
    speakers, _ = _speakers()
    groups = stats_groups(SpeakerNorm("transductive"), speakers)
    assert [(sorted(s.tolist()), sorted(t.tolist())) for s, t in groups] == [
        (list(range(k, 48, 3)),) * 2 for k in range(3)
    ]


def test_an_enrolment_clip_is_normalised_independently_of_itself() -> None:
    """Changing a clip's features moves only its own z-scores, by its own change: it is in
    no statistics that normalise it."""
    speakers, labels = _speakers()
    X = np.random.default_rng(0).normal(size=(len(speakers), 5))
    groups = stats_groups(SpeakerNorm("enrolment", "clips", 8), speakers, labels)
    Z = standardise(X, groups)
    for i in (0, 1, 2, 30):
        X2 = X.copy()
        X2[i] += 100.0
        Z2 = standardise(X2, groups)
        stats_of_i = next(stats for scored, stats in groups if i in scored)
        sd = X[stats_of_i].std(0)
        assert np.allclose(Z2[i] - Z[i], 100.0 / sd)


def test_a_speaker_too_small_for_the_enrolment_rule_is_refused_in_one_line() -> None:
    speakers = np.array([0, 0, 0, 1, 1])
    with pytest.raises(HpoError, match=r"speaker 1 has 2 clips.*at least 2 clips besides"):
        stats_groups(SpeakerNorm("enrolment", "clips", 8), speakers, None, "corpus x")


def test_old_booleans_read_as_modes_and_unknown_modes_are_refused(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path / "a.toml", features={"speaker_norm": True}))
    assert spec.settings.features.norm.mode == "transductive"
    assert spec.settings.merged({"speaker_norm": False})["features"]["speaker_norm"] == "off"
    bad = write_spec(tmp_path / "b.toml", features={"speaker_norm": "loo"})
    with pytest.raises(SpecError, match="'speaker_norm' must be"):
        load_spec(bad)
    bad = write_spec(tmp_path / "c.toml", features={"enrolment_clips": 1})
    with pytest.raises(SpecError, match="'enrolment_clips' = 1; give a count"):
        load_spec(bad)


MODES = {"off": "off", "transductive": "transductive", "enrolment": "enrolment (8 clips)"}


def _spec(dst: Path, prepared: Path, choices: list, **features: object) -> Path:
    """A study of a linear SVM on librosa features with ``speaker_norm`` over ``choices``."""
    spec = write_spec(
        dst, data={"corpus": str(prepared)}, pruner={"type": "none"}, features=features
    )
    raw = tomllib.loads(spec.read_text())
    raw["space"] = {
        **ONE_FEATURE_SET,
        "speaker_norm": {"type": "categorical", "choices": choices},
        "kernel": {"type": "categorical", "choices": ["linear"]},
        "C": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
    }
    spec.write_text(tomli_w.dumps(raw))
    return spec


@pytest.fixture(scope="module")
def modes_study(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A study of one linear SVM under each of the three modes (one trial each)."""
    tmp = tmp_path_factory.mktemp("modes")
    spec = _spec(tmp / "svm.toml", prepared, list(MODES))
    db = tmp / "s.db"
    study = optuna.create_study(study_name="svm", storage=f"sqlite:///{db}", direction="maximize")
    for mode in MODES:
        study.enqueue_trial(
            {"feature_set": "librosa", "speaker_norm": mode, "kernel": "linear", "C": 1.0}
        )
    args = ["run", "--study", str(spec), "--n-trials", "3", "--storage", str(db)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    return {"db": db, "tmp": tmp}


def test_each_mode_is_recorded_on_its_trial(modes_study: dict) -> None:
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{modes_study['db']}")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [t.params["speaker_norm"] for t in trials] == list(MODES)
    assert [t.user_attrs["speaker_norm"] for t in trials] == list(MODES.values())
    # The modes are different computations, not three names for one.
    assert len({t.value for t in trials}) == 3
    # The study's stored definition holds the enrolment rule the trial ran with.
    assert study.user_attrs["spec"]["features"]["enrolment_clips"] == 8


def test_status_and_report_name_the_best_trials_mode(modes_study: dict) -> None:
    db = str(modes_study["db"])
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    mode = MODES[study.best_trial.params["speaker_norm"]]
    res = CliRunner().invoke(cli, ["status", "--storage", db])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    # Beside the best value: the line after it, before the params.
    at = lines.index(f"    speaker norm: {mode}")
    assert lines[at + 1].startswith("    params:") and "trial" in lines[at - 1], res.output
    res = CliRunner().invoke(cli, ["status", "--storage", db, "--json"])
    assert json.loads(res.output)[0]["best"]["speaker_norm"] == mode
    out = modes_study["tmp"] / "report"
    args = ["report", "--study", "svm", "--storage", db, "--out", str(out), "--format", "json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    caption = json.loads((out / "report.json").read_text())["tables"]["results"]["caption"]
    assert "Speaker normalisation: " in caption
    if mode.startswith("enrolment"):
        assert "never the scored clip" in caption


def test_an_old_true_study_says_transductive(prepared: Path, tmp_path: Path) -> None:
    """A study file of the old format (true / false choices) runs, and its best trial's
    true is named for what it computed."""
    spec = _spec(tmp_path / "svm.toml", prepared, [True], speaker_norm=False)
    db = str(tmp_path / "s.db")
    res = CliRunner().invoke(cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", db])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["status", "--storage", db])
    assert "    speaker norm: transductive" in res.output.splitlines(), res.output
