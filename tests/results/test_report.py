from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hpo.cli import cli
from hpo.results.report import FIGURES
from tests.helpers import ONE_FEATURE_SET, write_spec


def test_report_writes_every_figure_and_a_self_contained_page(
    tmp_path: Path, prepared: Path
) -> None:
    spec = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
    )
    db = tmp_path / "s.db"
    run = CliRunner()
    assert (
        run.invoke(
            cli, ["run", "--study", str(spec), "--n-trials", "5", "--storage", str(db)]
        ).exit_code
        == 0
    )
    out = tmp_path / "rep"
    res = run.invoke(cli, ["report", "--study", "svm", "--storage", str(db), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in FIGURES:
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    page = (out / "index.html").read_text()
    # Self-contained: every figure embedded, no file references.
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    assert '.png"' not in page
    assert "SYNTHETIC corpus" in page and "Study svm" in page
    # Each searched feature set and speaker_norm choice with its best value.
    assert "<td>feature_set</td>" in page and "<td>speaker_norm</td>" in page
    assert "No nested estimate yet" in page


def test_report_on_a_study_without_complete_trials(tmp_path: Path) -> None:
    import optuna

    db = tmp_path / "s.db"
    optuna.create_study(study_name="empty", storage=f"sqlite:///{db}")
    res = CliRunner().invoke(cli, ["report", "--study", "empty", "--storage", str(db)])
    assert res.exit_code == 2 and "no complete trial" in res.output
