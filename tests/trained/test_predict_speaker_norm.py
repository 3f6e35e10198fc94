"""``hpo predict`` on a speaker-normalised model: refused (one line, naming the options)
unless told which statistics to use, and says what it used; ``hpo evaluate`` applies the
model's own rule to each evaluated speaker and names it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli import cli
from tests.trained.test_evaluate import _train

ENROLMENT = {"feature_set": "librosa", "speaker_norm": "enrolment", "kernel": "linear", "C": 1.0}


@pytest.fixture(scope="module")
def enrolment_model(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SVM trained with 'hpo train' with enrolment normalisation (8 clips)."""
    return _train(tmp_path_factory.mktemp("enrol-model"), prepared, ENROLMENT)


def _speaker(synth_src: Path, actor: int) -> list[str]:
    return [str(p) for p in sorted((synth_src / f"Actor_{actor:02d}").glob("*.wav"))]


def _refused(args: list[str], needle: str) -> None:
    res = CliRunner().invoke(cli, args)
    out = res.output.strip()
    assert res.exit_code == 2 and len(out.splitlines()) == 1, out
    assert needle in out and "Traceback" not in out, out


def test_a_normalised_model_without_statistics_is_refused(
    enrolment_model: Path, synth_src: Path
) -> None:
    clips = _speaker(synth_src, 5)[:8]
    _refused(
        ["predict", "--model", str(enrolment_model), *clips],
        "normalises features per speaker (speaker norm: enrolment (8 clips)); give --enrol "
        "DIR_OR_FILE",
    )
    _refused(
        [
            "predict",
            "--model",
            str(enrolment_model),
            clips[0],
            "--enrol",
            clips[0],
            "--enrol",
            clips[1],
        ],
        "both classified and an enrolment clip",
    )
    _refused(
        ["predict", "--model", str(enrolment_model), clips[0], "--enrol", clips[1]],
        "--enrol: give at least 2 enrolment clips",
    )
    args = ["predict", "--model", str(enrolment_model), clips[0], "--enrol", clips[1]]
    _refused([*args, "--speaker-norm-from", "given"], "either --enrol or --speaker-norm-from")


def test_enrolment_clips_give_the_statistics_and_the_output_says_so(
    enrolment_model: Path, synth_src: Path, tmp_path: Path
) -> None:
    clips = _speaker(synth_src, 5)
    enrol = tmp_path / "enrol"
    enrol.mkdir()
    for c in clips[8:]:
        shutil.copy(c, enrol)
    run = CliRunner()
    args = ["predict", "--model", str(enrolment_model), *clips[:3], "--enrol", str(enrol)]
    res = run.invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert list(doc["predicted"]) == clips[:3]  # the enrolment clips are not classified
    assert doc["speaker_norm"] == {
        "mode": "enrolment (8 clips)",
        "statistics": "8 enrolment clip(s) given with --enrol",
    }
    res = run.invoke(cli, args)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert (
        "speaker norm: enrolment (8 clips); statistics from 8 enrolment clip(s) given with "
        "--enrol" in lines
    )
    # Other enrolment clips, other statistics: the option is used, not ignored.
    enrol3 = [a for c in clips[3:6] for a in ("--enrol", c)]
    other = run.invoke(cli, [*args[:-2], *enrol3, "--json"])
    assert other.exit_code == 0, other.output
    assert json.loads(other.stdout)["predictions"] != doc["predictions"]


def test_given_clips_are_the_statistics_only_when_asked_with_a_warning(
    enrolment_model: Path, synth_src: Path
) -> None:
    clips = _speaker(synth_src, 5)[:4]
    args = ["predict", "--model", str(enrolment_model), *clips, "--speaker-norm-from", "given"]
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    said = json.loads(res.stdout)["speaker_norm"]
    # An enrolment model never normalises a clip by itself: each by the 3 others.
    assert said["statistics"] == "the other 3 given clips"
    assert "clips of one emotion erase its cue" in said["warning"]


def test_a_model_without_normalisation_refuses_enrolment_clips(
    prepared: Path, synth_src: Path, tmp_path: Path
) -> None:
    model = _train(tmp_path, prepared, {**ENROLMENT, "speaker_norm": "off"})
    clips = _speaker(synth_src, 5)
    _refused(
        ["predict", "--model", str(model), clips[0], "--enrol", clips[1], "--enrol", clips[2]],
        "this model has no speaker normalisation; leave out --enrol",
    )


def test_evaluate_names_the_mode_it_applied(enrolment_model: Path, release, tmp_path) -> None:
    from hpo.corpus.prepare import prepare

    corpus = tmp_path / "emodb"
    prepare(release("emodb", 4, 8), corpus, jobs=1)
    res = CliRunner().invoke(
        cli,
        ["evaluate", "--model", str(enrolment_model), "--data", str(corpus), "--format", "json"],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["tables"]["provenance"]["rows"]
    norm = next(r for r in rows if r[""] == "speaker norm")
    assert "never the scored clip" in norm["model"]
