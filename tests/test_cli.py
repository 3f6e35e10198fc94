"""The CLI surface: every command has help text and a README entry; --help starts fast."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from hpo.cli import cli
from tests.helpers import ROOT


def _commands(group: click.Group, prefix: str = "hpo") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            out += _commands(cmd, full)
        else:
            out.append((full, cmd))
    return out


def test_every_command_has_help_and_a_readme_entry() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = _commands(cli)
    assert len(commands) >= 10
    for name, cmd in commands:
        assert cmd.help and len(cmd.help) > 20, name
        assert f"`{name}" in readme, f"{name} missing from README's CLI reference"


def test_help_does_not_import_torch_or_transformers() -> None:
    code = (
        "import sys; from hpo.cli import cli\n"
        "try:\n    cli(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'librosa', 'optuna') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().endswith("[]")


def test_ci_runs_every_test_but_the_heavy_ones() -> None:
    # .ci/run splits `make test-all` in two (the tests needing PostgreSQL or Chromium run once
    # those are installed): together its parts select exactly what `make test-all` does.
    import itertools
    import re

    marks = ("slow", "heavy", "postgres", "browser")
    parts = re.findall(r'make test-all .*MARK="([^"]+)"', (ROOT / ".ci" / "run").read_text())
    assert len(parts) == 2
    for on in itertools.product([False, True], repeat=len(marks)):
        names = dict(zip(marks, on, strict=True))
        picked = [eval(p, {}, names) for p in parts]  # a -m expression is Python's own logic
        assert sum(picked) == (not names["heavy"]), names  # once each, none twice


def test_svm_study_never_imports_torch(tmp_path, few_clips) -> None:
    from tests.helpers import ONE_FEATURE_SET, write_spec

    # About what a process loads, so a subprocess; kept cheap: one trial of the whole study
    # path on librosa features, and openSMILE's two sets (their extraction code) on a
    # second of noise instead of a study that extracts ComParE for every clip.
    spec = write_spec(tmp_path / "svm.toml", data={"corpus": str(few_clips)}, space=ONE_FEATURE_SET)
    code = (
        "import sys\nimport numpy as np\n"
        "from hpo.study.run import run_study\nfrom hpo.kinds import load_spec\n"
        "from hpo.kinds.svm.features import smile_features\n"
        f"run_study(load_spec({str(spec)!r}), {str(tmp_path / 's.db')!r}, n_trials=1)\n"
        "noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32)\n"
        "print('SHAPES', [smile_features(noise, s).shape for s in ('egemaps', 'compare')])\n"
        "print('LOADED', sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert "SHAPES [(88,), (6373,)]" in out  # both openSMILE sets ran
    assert "LOADED []" in out


def test_version_is_written_once_and_printed_by_hpo_version() -> None:
    import importlib.metadata
    import tomllib

    import hpo

    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and res.output == f"hpo, version {hpo.__version__}\n"
    # pyproject.toml holds no copy of its own: setuptools reads hpo.__version__.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hpo.__version__"}
    # And the installed package's metadata says the same.
    assert importlib.metadata.version("hpo") == hpo.__version__


def test_an_unexpected_error_is_one_line_with_its_type(monkeypatch, tmp_path) -> None:
    import hpo.corpus.info

    def broken(root):
        raise KeyError()  # no message: the type alone names it

    monkeypatch.setattr(hpo.corpus.info, "corpus_info", broken)
    res = CliRunner().invoke(cli, ["data", "info", str(tmp_path)])
    assert res.exit_code == 70
    assert res.output == (
        "hpo: internal error: KeyError (a bug in hpo; rerun with HPO_DEBUG=1 for the "
        "traceback and report it)\n"
    )


def test_hpo_storage_is_resolved_once_option_then_environment(monkeypatch, tmp_path) -> None:
    import optuna

    urls = {n: f"sqlite:///{tmp_path / n}.db" for n in ("env", "opt")}
    for name, url in urls.items():
        optuna.create_study(study_name=f"in-{name}", storage=url).optimize(
            lambda t: t.suggest_float("x", 0, 1), n_trials=1
        )
    monkeypatch.setenv("HPO_STORAGE", urls["env"])

    def status(*args: str) -> list[dict]:
        res = CliRunner().invoke(cli, ["status", "--json", *args])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    # $HPO_STORAGE without --storage; the printed nested command needs no --storage then.
    (row,) = status()
    assert row["study"] == "in-env"
    assert row["best"]["selection"]["nested_command"] == "hpo nested --study in-env"
    # --storage beats the variable, and the command then names it.
    (row,) = status("--storage", urls["opt"])
    assert row["study"] == "in-opt"
    assert row["best"]["selection"]["nested_command"].endswith(f"--storage {urls['opt']}")


def test_help_texts_speak_of_any_corpus_and_its_folds() -> None:
    top = CliRunner().invoke(cli, ["--help"]).output
    assert "speech emotion recognition on any corpus" in top
    assert "K folds or leave-one-speaker-out" in " ".join(top.split())
    # No command claims RAVDESS alone or a fixed fold count (the corpus's folds decide).
    stale = ("on RAVDESS", "six-fold", "6-fold", "actor-independent", "actor cross-validation")
    for name, cmd in [("hpo", cli), *_commands(cli)]:
        text = " ".join(cmd.get_help(click.Context(cmd, info_name=name)).split())
        assert not [s for s in stale if s in text], name
