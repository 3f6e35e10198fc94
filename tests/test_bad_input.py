"""Every command, fed bad input: one line on stderr, a non-zero exit, existing data untouched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli import cli
from tests.helpers import ONE_FEATURE_SET, write_spec


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> dict[str, Path]:
    """A study database with a finished study, a study file and a corpus; tests only read
    them (each test checks that nothing changed)."""
    tmp_path = tmp_path_factory.mktemp("world")
    spec = write_spec(tmp_path / "svm.toml", data={"corpus": str(prepared)}, space=ONE_FEATURE_SET)
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, but someone's notes" * 20)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text(
        "name = 'svm'\nkind = 'svm'\n[space.C]\ntype = 'float'\nlow = 5\nhigh = 1\n"
    )
    w2v = write_spec(tmp_path / "w2v.toml", base="w2v", data={"corpus": str(prepared)})
    return {
        "spec": spec,
        "w2v": w2v,
        "db": db,
        "garbage": garbage,
        "bad_toml": bad_toml,
        "corpus": prepared,
        "tmp": tmp_path,
    }


def _cases(w: dict[str, Path]) -> list[tuple[list[str], str]]:
    t = w["tmp"]
    return [
        (["data", "prepare", str(t / "missing.zip")], "no such file"),
        (["data", "info", str(t)], "not a prepared corpus"),
        (
            ["data", "synth", "--out", str(t / "s"), "--actors", "30"],
            "Invalid value for '--actors'",
        ),
        (["run", "--study", str(w["bad_toml"]), "--storage", str(w["db"])], "low (5) is greater"),
        (["run", "--study", "nonexistent-study", "--storage", str(w["db"])], "no such study file"),
        (
            [
                "run",
                "--study",
                str(w["spec"]),
                "--storage",
                str(w["db"]),
                "--data",
                str(t / "nowhere"),
            ],
            "no such corpus directory",
        ),
        (["run", "--study", str(w["spec"]), "--storage", "mongodb://x/y"], "unknown scheme"),
        (
            ["run", "--study", str(w["spec"]), "--storage", str(w["garbage"])],
            "not an SQLite database",
        ),
        (
            ["run", "--study", str(w["spec"]), "--storage", str(w["db"]), "--n-trials", "0"],
            "--n-trials",
        ),
        (["status", "--storage", str(w["garbage"])], "not an SQLite database"),
        (["status", "--study", "smv", "--storage", str(w["db"])], "no study named 'smv'"),
        (["export", "--study", "smv", "--storage", str(w["db"])], "(studies: svm)"),
        (
            ["export", "--study", "svm", "--storage", "postgresql://u:secret@127.0.0.1:1/x"],
            "cannot open storage",
        ),
        (["report", "--study", "smv", "--storage", str(w["db"])], "no study named"),
        (["train", "--config", str(t / "nope.toml")], "no such exported configuration"),
        (["train", "--config", str(w["bad_toml"])], "has no [config]"),
        (["predict", "--model", str(t), str(t / "x.wav")], "not a model made by"),
        (["dashboard", "--storage", str(t / "missing.db")], "no such study database"),
        (
            ["run", "--study", str(w["spec"]), "--storage", str(w["db"]), "--model", "tiny"],
            "--model applies to w2v studies only",
        ),
        # Offline, the default hub model cannot load: refused before the study is touched.
        (["run", "--study", str(w["w2v"]), "--storage", str(w["db"])], "--model tiny"),
    ]


def test_every_command_rejects_bad_input_cleanly(world: dict[str, Path]) -> None:
    before_db = world["db"].read_bytes()
    before_garbage = world["garbage"].read_bytes()
    before_corpus = _digest(world["corpus"])
    for args, needle in _cases(world):
        res = CliRunner().invoke(cli, args)
        out = res.output.strip()
        assert res.exit_code != 0, (args, out)
        assert "Traceback" not in out, (args, out)
        assert needle in out, (args, out)
        assert len(out.splitlines()) == 1, (args, out)  # one line
        assert "secret" not in out  # passwords never echoed
    # Nothing lost or changed: the study database, a foreign file, the corpus.
    assert world["db"].read_bytes() == before_db
    assert world["garbage"].read_bytes() == before_garbage
    assert _digest(world["corpus"]) == before_corpus


def test_truncated_sqlite_file_is_reported_not_overwritten(
    world: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.db"
    data = world["db"].read_bytes()
    broken.write_bytes(data[:4096] + b"\x00" * 100)
    before = broken.read_bytes()
    res = CliRunner().invoke(cli, ["status", "--storage", str(broken)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert broken.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unreadable_database(world: dict[str, Path]) -> None:
    world["db"].chmod(0)
    try:
        res = CliRunner().invoke(cli, ["status", "--storage", str(world["db"])])
        assert res.exit_code == 2 and "cannot read" in res.output
    finally:
        world["db"].chmod(0o644)


def test_full_disk_during_prepare_keeps_the_old_corpus(
    tmp_path: Path, synth_src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from hpo.corpus import prepare as prepare_mod

    src = tmp_path / "src"
    shutil.copytree(synth_src / "Actor_01", src / "Actor_01")
    shutil.copytree(synth_src / "Actor_02", src / "Actor_02")
    out = tmp_path / "corpus"
    prepare_mod.prepare(src, out, n_folds=2, jobs=1)
    before = _digest(out)
    for p in src.rglob("*.wav"):
        p.write_bytes(p.read_bytes()[:-2] + b"\x01\x00")  # change every clip

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prepare_mod.sf, "write", no_space)
    res = CliRunner().invoke(cli, ["data", "prepare", str(src), "--out", str(out), "--jobs", "1"])
    assert res.exit_code == 2
    assert res.output.strip().endswith(
        "No space left on device); the existing corpus there is unchanged"
    )
    assert _digest(out) == before


def test_locked_database_is_reported_and_left_alone(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from hpo.study import storage

    monkeypatch.setattr(storage, "LOCK_WAIT", 0.5)
    before = world["db"].read_bytes()
    holder = sqlite3.connect(world["db"], isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program in the middle of a write
    try:
        for args in (["status"], ["run", "--study", str(world["spec"]), "--n-trials", "3"]):
            res = CliRunner().invoke(cli, [*args, "--storage", str(world["db"])])
            assert res.exit_code == 2, res.output
            assert "database is locked by another program" in res.output
            assert len(res.output.strip().splitlines()) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert world["db"].read_bytes() == before
