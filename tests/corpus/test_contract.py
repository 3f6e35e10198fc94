"""The prepared-corpus contract: generic columns, corpus.json naming the corpus, its labels and
fold rule; a corpus of another format is refused with the command that prepares it again."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.formats.ravdess import EMOTIONS
from hpo.corpus.manifest import COLUMNS, load_corpus
from hpo.corpus.prepare import prepare

# The manifest's columns before the contract (hpo's format 1, RAVDESS only).
V1 = ["path", "actor", "gender", "emotion", "emotion_id", "intensity", "statement"]
V1 += ["repetition", "duration", "channels", "source", "source_sha256", "fold"]


def test_a_prepared_corpus_holds_the_contract(prepared: Path) -> None:
    meta = json.loads((prepared / "corpus.json").read_text())
    assert meta["name"] == "ravdess" and meta["labels"] == list(EMOTIONS)
    assert meta["folds"] == 6 and meta["n_folds"] == 6
    assert meta["speakers"]["1"] == "male" and meta["speakers"]["2"] == "female"
    header = (prepared / "manifest.csv").read_text().splitlines()[0].split(",")
    assert tuple(header[: len(COLUMNS)]) == COLUMNS
    assert header[len(COLUMNS) :] == ["emotion_id", "intensity", "statement", "repetition"]
    c = load_corpus(prepared).clips[0]
    assert c.sample_rate == 48_000 and c.speaker == "1"
    assert c.label == EMOTIONS[int(dict(c.extra)["emotion_id"]) - 1]


def _as_format_1(corpus_dir: Path) -> None:
    """Rewrite a prepared corpus as hpo's format 1 wrote it (RAVDESS-only columns)."""
    corpus = load_corpus(corpus_dir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=V1, lineterminator="\n")
    w.writeheader()
    for c in corpus.clips:
        row = c.row()
        w.writerow({k: row.get(k, "") for k in V1} | {"actor": c.speaker, "emotion": c.label})
    (corpus_dir / "manifest.csv").write_text(buf.getvalue())
    meta = {k: v for k, v in corpus.meta.items() if k not in ("name", "labels", "folds")}
    (corpus_dir / "corpus.json").write_text(json.dumps({**meta, "format": 1}))


@pytest.mark.parametrize("fmt", [1, 99])
def test_a_corpus_of_another_format_is_refused_with_the_command_that_prepares_it(
    prepared_copy: Path, synth_src: Path, fmt: int
) -> None:
    if fmt == 1:
        _as_format_1(prepared_copy)
    else:
        meta = json.loads((prepared_copy / "corpus.json").read_text())
        (prepared_copy / "corpus.json").write_text(json.dumps({**meta, "format": fmt}))
    res = CliRunner().invoke(cli, ["data", "info", str(prepared_copy)])
    line = res.output.strip()
    # One line, exit 2, naming the file, the format found and the command to run.
    assert res.exit_code == 2 and len(line.splitlines()) == 1, res.output
    assert (
        f"corpus.json: corpus format {fmt}, not 2; re-prepare with 'hpo data prepare SRC " in line
    )
    assert f"--out {prepared_copy}'" in line
    # Preparing again there writes the current format.
    prepare(synth_src, prepared_copy, jobs=1)
    assert load_corpus(prepared_copy).meta["format"] == 2


def test_a_corpus_json_without_its_label_set_is_refused(prepared_copy: Path) -> None:
    meta = json.loads((prepared_copy / "corpus.json").read_text())
    del meta["labels"]
    (prepared_copy / "corpus.json").write_text(json.dumps(meta))
    res = CliRunner().invoke(cli, ["data", "info", str(prepared_copy)])
    assert res.exit_code == 2
    assert "no corpus name or label set; re-prepare with 'hpo data prepare" in res.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--format", "iemocap"], "--format iemocap: unknown corpus format (known: ravdess, emodb"),
        (["--folds", "5"], "5 folds asked for but the corpus has only 4 speaker(s)"),
        (["--folds", "abc"], "Invalid value for '--folds': 'abc' is neither"),
        (["--demographics", "x.csv"], "--demographics is CREMA-D's VideoDemographics.csv"),
    ],
)
def test_bad_preparation_options_are_one_line_and_write_nothing(
    synth_src: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    src = tmp_path / "src"
    for a in (1, 2, 3, 4):
        (src / f"Actor_{a:02d}").mkdir(parents=True)
        for wav in sorted((synth_src / f"Actor_{a:02d}").glob("*.wav"))[:2]:
            (src / wav.parent.name / wav.name).write_bytes(wav.read_bytes())
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["data", "prepare", str(src), "--out", str(out), *args])
    line = res.output.strip()
    assert res.exit_code == 2 and len(line.splitlines()) == 1 and needle in line, line
    assert not out.exists()


def test_synth_refuses_more_speakers_than_the_release_has(tmp_path: Path) -> None:
    args = ["data", "synth", "--format", "tess", "--out", str(tmp_path), "--clips-per-actor", "1"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and "(2 speakers, 24414 Hz" in res.output  # default: both
    res = CliRunner().invoke(cli, ["data", "synth", "--format", "savee", "--actors", "5"])
    assert res.exit_code == 2 and "Invalid value for '--actors': 5: savee has 4" in res.output
