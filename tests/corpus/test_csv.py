"""A corpus listed in a CSV file: paths relative to the CSV, one line for every mistake in it,
nothing written when it is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.corpus.prepare import prepare

HEADER = "path,speaker,label,gender\n"


@pytest.fixture
def clips(release, tmp_path: Path) -> list[Path]:
    """SAVEE-like audio copied under my-corpus/audio/ (the CSV's folder is my-corpus/)."""
    src = release("savee", 4, 7)
    dst = tmp_path / "my-corpus" / "audio"
    shutil.copytree(src / "AudioData", dst)
    return sorted(dst.rglob("*.wav"))


def _row(p: Path, label: str = "", gender: str = "") -> str:
    rel = p.relative_to(p.parents[2]).as_posix()  # audio/DC/a01.wav
    return f"{rel},{p.parent.name},{label or p.stem.rstrip('0123456789')},{gender}\n"


def _blank(row: str, field: int) -> str:
    cells = row.split(",")
    cells[field] = ""
    return ",".join(cells)


def _fails(args: list[str], needle: str) -> str:
    res = CliRunner().invoke(cli, args)
    out = res.output.strip()
    assert res.exit_code == 2, out
    assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    assert needle in out, out
    return out


def test_a_csv_corpus_prepares_with_its_own_labels(clips: list[Path], tmp_path: Path) -> None:
    table = tmp_path / "my-corpus" / "list.csv"
    # Semicolons (a spreadsheet's CSV in many locales), a gender on one row of a speaker
    # only, a blank line, and one file listed twice.
    last = {p.parent.name: p for p in clips}  # the gender comes after the speaker's other rows
    rows = [_row(p, gender="m" if p in last.values() else "").replace(",", ";") for p in clips]
    table.write_text(HEADER.replace(",", ";") + "".join(rows) + "\n" + rows[0])
    r = prepare(None, tmp_path / "out", manifest=table, jobs=1)
    corpus = load_corpus(tmp_path / "out")
    # The label set is the labels found, sorted; the name is the CSV's.
    assert corpus.labels == ("a", "d", "f", "h", "n", "sa", "su") and corpus.name == "list"
    assert len(corpus.clips) == len(clips)
    assert {c.gender for c in corpus.clips} == {"male"}  # each speaker's gender, every row
    first = clips[0].relative_to(tmp_path / "my-corpus").as_posix()
    assert r.rejected == [{"file": first, "reason": "listed again (first on line 2)"}]
    assert corpus.fold_rule == "loso" and sorted(set(corpus.speakers)) == ["DC", "JE", "JK", "KL"]


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda rows: ["path,label\n", *rows[1:]], "no 'speaker' column (has: path, label)"),
        (
            lambda rows: [*rows[:3], "audio/DC/nope.wav,DC,a,\n"],
            "list.csv:4: audio/DC/nope.wav does not exist",
        ),
        (lambda rows: [*rows[:2], _blank(rows[2], 2)], "list.csv:3: empty label"),
        (lambda rows: [*rows[:2], _blank(rows[2], 1)], "list.csv:3: empty speaker"),
        (lambda rows: [*rows[:2], "audio/DC,DC,a,\n"], "list.csv:3: audio/DC is not a file"),
        (
            lambda rows: [rows[0], rows[1].replace(",\n", ",f\n"), rows[2].replace(",\n", ",m\n")],
            "list.csv:3: speaker DC is 'male' here but 'female' on line 2",
        ),
        (lambda rows: [rows[0]], "has a header but no rows"),
        # A typo is refused, not made a gender group of its own that fold balancing uses.
        (
            lambda rows: [rows[0], rows[1].replace(",\n", ",mael\n"), *rows[2:]],
            "list.csv:2: gender 'mael' is not one of m, f",
        ),
    ],
)
def test_mistakes_in_the_csv_are_one_line_and_write_nothing(
    clips: list[Path], tmp_path: Path, edit, needle: str
) -> None:
    table = tmp_path / "my-corpus" / "list.csv"
    table.write_text("".join(edit([HEADER, *(_row(p) for p in clips)])))
    out = tmp_path / "out"
    _fails(["data", "prepare", "--manifest", str(table), "--out", str(out)], needle)
    assert not out.exists()


def test_csv_options_that_do_not_go_together(clips: list[Path], tmp_path: Path) -> None:
    table = tmp_path / "my-corpus" / "list.csv"
    table.write_text(HEADER + "".join(_row(p) for p in clips))
    _fails(["data", "prepare", "--format", "csv", str(tmp_path)], "--format csv needs --manifest")
    _fails(["data", "prepare", str(tmp_path), "--manifest", str(table)], "give no SRC")
    _fails(["data", "prepare", "--manifest", str(tmp_path / "no.csv")], "no such CSV file")
    # SRC may be the CSV itself; --name names the corpus.
    out = tmp_path / "o"
    res = CliRunner().invoke(
        cli, ["data", "prepare", str(table), "--out", str(out), "--name", "mine", "--jobs", "1"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "corpus.json").read_text())["name"] == "mine"


# A published split (fold) and sessions (group) per speaker; SAVEE's speakers are all men.
FOLD = {"DC": "2", "JE": "1", "JK": "1", "KL": "2"}
SESSION = {"DC": "s1", "JK": "s1", "JE": "s2", "KL": "s2"}


def _split_rows(clips: list[Path], fold=FOLD.get, group=SESSION.get) -> list[str]:
    rows = []
    for p in clips:
        s = p.parent.name
        rows.append(_row(p).replace("\n", f",{fold(s) or ''},{group(s) or ''}\n"))
    return [HEADER.replace("\n", ",fold,group\n"), *rows]


def _fold_actors(out: Path, rule: object) -> dict[int, tuple]:
    return {f.index: f.valid_actors for f in corpus_folds(load_corpus(out), rule)}


def test_a_fold_column_is_the_split_used_as_it_is(clips: list[Path], tmp_path: Path) -> None:
    table = tmp_path / "my-corpus" / "list.csv"
    rows = _split_rows(clips, group=lambda s: None)
    rows[1] = _blank(rows[1], 4)  # a row without a fold takes its speaker's
    table.write_text("".join(rows))
    r = prepare(None, tmp_path / "out", manifest=table, jobs=1)
    assert r.folds == "file"
    # Numbered 1..2 in the CSV, 0..1 in the manifest; not the rule's blocks (DC, JE | JK, KL).
    assert _fold_actors(tmp_path / "out", "file") == {0: ("JE", "JK"), 1: ("DC", "KL")}
    assert load_corpus(tmp_path / "out").meta["folds_from"]["by"] == "fold column"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (2, {0: ("DC", "JK"), 1: ("JE", "KL")}),  # the rule's blocks would be DC, JE | JK, KL
        ("loso", {0: ("DC", "JK"), 1: ("JE", "KL")}),  # leave one group out: 2 folds, not 4
    ],
)
def test_a_group_column_keeps_a_sessions_speakers_in_one_fold(
    clips: list[Path], tmp_path: Path, rule: object, expected: dict
) -> None:
    table = tmp_path / "my-corpus" / "list.csv"
    table.write_text("".join(_split_rows(clips, fold=lambda s: None)).replace(",fold,", ",,"))
    out = tmp_path / "out"
    # Without --folds, fewer than 6 groups: leave one group out.
    args = [] if rule == "loso" else ["--folds", str(rule)]
    res = CliRunner().invoke(
        cli, ["data", "prepare", "--manifest", str(table), "--out", str(out), *args]
    )
    assert res.exit_code == 0, res.output
    assert _fold_actors(out, rule) == expected
    corpus = load_corpus(out)
    assert corpus.meta["fold_unit"] == "group" and corpus.speaker_groups == SESSION
    words = "leave one group out" if rule == "loso" else "2 group folds"
    assert f"folds ({words}):" in CliRunner().invoke(cli, ["data", "info", str(out)]).output


@pytest.mark.parametrize(
    ("edit", "args", "needle"),
    [
        (
            lambda r: [*r[:2], r[2].replace(",2,s1", ",1,s1")],
            [],
            "list.csv:3: speaker DC is fold '1' here but '2' on line 2",
        ),
        (
            lambda r: [*r[:2], r[2].replace(",s1", ",s2")],
            [],
            "list.csv:3: speaker DC is group 's2' here but 's1' on line 2",
        ),
        (
            lambda r: [
                r[0],
                *(x.replace(",2,", ",,") for x in r[1:] if "/DC/" in x),
                *(x for x in r[1:] if "/DC/" not in x),
            ],
            [],
            "speaker DC has no fold on any row",
        ),
        (
            lambda r: [x.replace(",s2", ",s1") for x in r],
            [],
            "group s1 has speaker DC in fold 1 but speaker JE in fold 0",
        ),
        (
            lambda r: r,
            ["--folds", "2"],
            "gives the folds (a published split, used as it is); leave out --folds",
        ),
    ],
    ids=[
        "speaker-in-two-folds",
        "speaker-in-two-groups",
        "speaker-without-fold",
        "group-split",
        "with-folds",
    ],
)
def test_mistakes_in_a_fold_or_group_column_are_one_line(
    clips: list[Path], tmp_path: Path, edit, args: list[str], needle: str
) -> None:
    table = tmp_path / "my-corpus" / "list.csv"
    table.write_text("".join(edit(_split_rows(clips))))
    out = tmp_path / "out"
    _fails(["data", "prepare", "--manifest", str(table), "--out", str(out), *args], needle)
    assert not out.exists()
