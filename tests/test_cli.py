"""The CLI surface: every command has help text and a README entry; --help starts fast."""

from __future__ import annotations

import subprocess
import sys

import click

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


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test-all " in readme and "\nmake test-all\n" in ci


def test_svm_study_never_imports_torch(tmp_path, few_clips) -> None:
    from tests.helpers import write_spec

    # The shipped space, every feature set (openSMILE's too), on a corpus whose caches
    # tests may write.
    spec = write_spec(tmp_path / "svm.toml", data={"corpus": str(few_clips)})
    code = (
        "import sys\n"
        "from hpo.study.run import run_study\nfrom hpo.kinds import load_spec\n"
        f"run_study(load_spec({str(spec)!r}), {str(tmp_path / 's.db')!r}, n_trials=1)\n"
        "print('LOADED', sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert "LOADED []" in out
