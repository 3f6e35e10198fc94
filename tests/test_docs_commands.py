"""Every command the README and docs/ show runs as written: each ``hpo`` subcommand and
``--option`` in their code blocks is one ``hpo ... --help`` lists, each ``make`` target one
the Makefile has. In-process (click's CliRunner), no subprocess."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from tests.helpers import ROOT

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def command_lines(text: str) -> list[str]:
    """The shell commands in ``text``'s fenced code blocks: continuation lines joined,
    prompts and comments dropped, ``a && b`` / ``a; b`` / ``a | b`` split."""
    out = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"^\s*\$\s+", "", line).split(" #")[0].strip()
            if line and not line.startswith("#"):
                out += [p.strip() for p in re.split(r"&&|;|\|", line) if p.strip()]
    return out


def hpo_argv(command: str) -> list[str] | None:
    """The arguments after ``hpo`` (or ``.venv/bin/hpo``, ``python -m hpo``), leading
    ``VAR=value`` assignments skipped; None for any other program."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    while words and ENV.match(words[0]):
        words = words[1:]
    if words[:3] == ["python", "-m", "hpo"]:
        return words[3:]
    if words and Path(words[0]).name == "hpo":
        return words[1:]
    return None


def check_hpo(argv: list[str]) -> list[str]:
    """What is wrong with ``hpo ARGV``: an unknown subcommand, or options that
    ``hpo SUBCOMMAND --help`` does not list."""
    path, cmd = [], cli
    words = list(argv)
    while isinstance(cmd, click.Group) and words and not words[0].startswith("-"):
        name = words.pop(0)
        if name not in cmd.commands:
            return [f"no subcommand 'hpo {' '.join([*path, name])}'"]
        path.append(name)
        cmd = cmd.commands[name]
    res = CliRunner().invoke(cli, [*path, "--help"])
    if res.exit_code != 0:
        return [f"'hpo {' '.join(path)} --help' exited {res.exit_code}"]
    listed = set(re.findall(r"--[a-z0-9][a-z0-9-]*", res.output))
    options = [w.split("=")[0] for w in words if w.startswith("--") and w != "--"]
    return [f"'hpo {' '.join(path)}' has no option {o}" for o in options if o not in listed]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))


def _documented() -> list[tuple[str, str]]:
    return [
        (f"{f.relative_to(ROOT)}: {c}", c)
        for f in doc_files()
        for c in command_lines(f.read_text())
    ]


def test_the_docs_show_hpo_commands() -> None:
    assert sum(hpo_argv(c) is not None for _, c in _documented()) >= 10


@pytest.mark.parametrize("where,command", _documented(), ids=lambda v: v[:80])
def test_every_documented_command_exists(where: str, command: str) -> None:
    argv = hpo_argv(command)
    if argv is not None:
        assert not check_hpo(argv), where
    elif command.split()[0] == "make":
        targets = [w for w in command.split()[1:] if not w.startswith("-") and "=" not in w]
        assert set(targets) <= make_targets(), where


def test_the_checker_catches_what_it_is_for() -> None:
    # Unknown subcommands and options are reported; known ones, values and prompts are not.
    assert check_hpo(["run", "--study", "svm", "--n-trials", "5"]) == []
    assert check_hpo(["data", "synth", "--clips-per-actor=16"]) == []
    assert check_hpo(["rnu", "--study", "svm"]) == ["no subcommand 'hpo rnu'"]
    assert check_hpo(["data", "prepare", "--outt", "x"]) == [
        "'hpo data prepare' has no option --outt"
    ]
    lines = command_lines("```bash\n$ HPO_STORAGE=x hpo status \\\n  --storage y  # a note\n```\n")
    assert lines == ["HPO_STORAGE=x hpo status --storage y"]
    assert hpo_argv(lines[0]) == ["status", "--storage", "y"]
    assert hpo_argv(".venv/bin/hpo dashboard") == ["dashboard"]
    assert hpo_argv("make demo FULL=1") is None and "demo" in make_targets()
