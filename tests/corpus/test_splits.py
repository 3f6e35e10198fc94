"""Published splits: ``hpo data prepare --folds-from FILE`` (speaker -> fold, or clip -> fold)
reproduces the table's folds exactly, studies ask for them as ``folds = "file"``, and every
mistake in the table is one line with nothing written."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.errors import CorpusError
from tests.helpers import ONE_FEATURE_SET, write_spec

# Not contiguous blocks, numbered from 1 as papers do: fold 1 = actors 2 and 4, ...
SPLIT = {1: 3, 2: 1, 3: 2, 4: 1, 5: 3, 6: 2}
EXPECTED = {0: (2, 4), 1: (3, 6), 2: (1, 5)}


@pytest.fixture(scope="module")
def src(few_clips: Path) -> Path:
    """The 6-actor, 48-clip RAVDESS-layout release behind ``few_clips`` (read only)."""
    return few_clips.parent / "src"


def _table(path: Path, rows: dict | list, head: str = "speaker,fold") -> Path:
    items = rows.items() if isinstance(rows, dict) else rows
    path.write_text(head + "\n" + "".join(f"{k},{v}\n" for k, v in items))
    return path


def _prepare(src: Path, out: Path, *args: str) -> str:
    res = CliRunner().invoke(cli, ["data", "prepare", str(src), "--out", str(out), *args])
    assert res.exit_code == 0, res.output
    return res.output


def _fails(args: list[str], needle: str, out: Path) -> str:
    res = CliRunner().invoke(cli, args)
    text = res.output.strip()
    assert res.exit_code == 2, text
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    assert needle in text, text
    assert not out.exists(), "a refused split left a corpus behind"
    return text


@pytest.fixture(scope="module")
def split_corpus(src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("split")
    table = _table(root / "split.csv", SPLIT)
    printed = _prepare(src, root / "corpus", "--folds-from", str(table), "--jobs", "1")
    assert f"folds (read from {table.resolve()}, by speaker):" in printed
    assert "  fold 0: speakers 2, 4" in printed
    return root / "corpus"


def test_a_speaker_fold_table_is_reproduced_exactly(split_corpus: Path) -> None:
    corpus = load_corpus(split_corpus)
    # The manifest: every clip in its speaker's fold, renumbered 1..K -> 0..K-1.
    assert {(int(c.speaker), c.fold) for c in corpus.clips} == {
        (a, f - 1) for a, f in SPLIT.items()
    }
    folds = corpus_folds(corpus, "file")
    assert {f.index: f.valid_actors for f in folds} == EXPECTED
    meta = json.loads((split_corpus / "corpus.json").read_text())
    table = split_corpus.parent / "split.csv"
    assert meta["folds"] == "file" and meta["n_folds"] == 3
    assert meta["folds_from"] == {
        "file": str(table.resolve()),
        "sha256": hashlib.sha256(table.read_bytes()).hexdigest(),
        "by": "speaker",
    }


def test_a_study_must_ask_for_the_imported_split(split_corpus: Path, prepared: Path) -> None:
    # The same number of folds is not the same split: the rule must be "file".
    with pytest.raises(CorpusError, match='asks for 3: .* or set \\[data\\] folds = "file"'):
        corpus_folds(load_corpus(split_corpus), 3)
    with pytest.raises(CorpusError, match="--folds-from FILE', or set \\[data\\] folds = 6"):
        corpus_folds(load_corpus(prepared), "file")


@pytest.mark.slow  # about 15 s here: librosa features of 48 clips, one trial of 3 folds
def test_an_svm_study_runs_on_the_imported_folds(split_corpus: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(split_corpus), "folds": "file"},
        space=ONE_FEATURE_SET,
    )
    db = tmp_path / "s.db"
    args = ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    con = sqlite3.connect(db)
    try:
        (state,) = con.execute("SELECT state FROM trials").fetchone()
        (attr,) = con.execute(
            "SELECT value_json FROM study_user_attributes WHERE key = 'fold_actors'"
        ).fetchone()
    finally:
        con.close()
    assert state == "COMPLETE"
    assert json.loads(attr) == {str(k): list(v) for k, v in EXPECTED.items()}


def test_a_clip_fold_table_gives_each_speaker_its_clips_fold(src: Path, tmp_path: Path) -> None:
    # Clip -> fold, numbered from 0, with the paths as another machine wrote them
    # (absolute, under another root): matched by their ends.
    wavs = sorted(src.rglob("*.wav"))
    rows = [
        (f"/corpora/RAVDESS/{p.relative_to(src).as_posix()}", SPLIT[int(p.parent.name[-2:])] - 1)
        for p in wavs
    ]
    table = _table(tmp_path / "clips.csv", rows, "path,fold")
    _prepare(src, tmp_path / "corpus", "--folds-from", str(table), "--jobs", "1")
    corpus = load_corpus(tmp_path / "corpus")
    assert {f.index: f.valid_actors for f in corpus_folds(corpus, "file")} == EXPECTED
    assert corpus.meta["folds_from"]["by"] == "path"


def test_a_clip_table_that_splits_a_speaker_is_refused(src: Path, tmp_path: Path) -> None:
    wavs = sorted(src.rglob("*.wav"))
    rows = [(p.name, SPLIT[int(p.parent.name[-2:])]) for p in wavs]
    rows[1] = (rows[1][0], 3)  # one clip of actor 1 (fold 3) elsewhere
    rows[0] = (rows[0][0], 1)
    table = _table(tmp_path / "clips.csv", rows, "path,fold")
    out = tmp_path / "corpus"
    args = ["data", "prepare", str(src), "--out", str(out), "--folds-from", str(table)]
    _fails(args, "clips.csv:3: speaker 1 is in fold 3 here but in fold 1 at", out)


@pytest.mark.parametrize(
    ("rows", "extra", "needle"),
    [
        ({k: v for k, v in SPLIT.items() if k != 4}, [], "speaker 4 of the corpus has no fold"),
        ({**SPLIT, 7: 1}, [], "split.csv:8: speaker '7' is not in the corpus"),
        ({**SPLIT, 6: 5}, [], "fold 4 has no speaker (the folds run 1..5)"),
        ({**SPLIT, 6: "two"}, [], "split.csv:7: fold 'two' is not a whole number"),
        ({**SPLIT, 6: 1} | dict.fromkeys(range(1, 7), 1), [], "every speaker is in one fold"),
        (SPLIT, ["--folds", "3"], "gives the folds (a published split, used as it is)"),
    ],
    ids=["missing", "unknown", "gap", "not-a-number", "one-fold", "with-folds"],
)
def test_a_bad_table_is_refused_in_one_line(
    src: Path, tmp_path: Path, rows: dict, extra: list[str], needle: str
) -> None:
    table = _table(tmp_path / "split.csv", rows)
    out = tmp_path / "corpus"
    _fails(
        ["data", "prepare", str(src), "--out", str(out), "--folds-from", str(table), *extra],
        needle,
        out,
    )


def test_a_table_without_speaker_or_path_is_refused(src: Path, tmp_path: Path) -> None:
    table = _table(tmp_path / "split.csv", SPLIT, "actor,fold")
    out = tmp_path / "corpus"
    args = ["data", "prepare", str(src), "--out", str(out), "--folds-from", str(table)]
    _fails(args, "no 'speaker' or 'path' column (has: actor, fold)", out)
