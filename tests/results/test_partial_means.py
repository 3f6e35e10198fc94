"""A pruned trial's value is a partial mean over the folds it ran, never shown as a CV mean
(issue #24, item 6): status, the report's tables and its history plot."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.cli import cli
from hpo.results.report import history_figure

DIST = {"c": FloatDistribution(0.1, 10.0, log=True)}


def _add(study: optuna.Study, state: TrialState, c: float, folds: list, value: float) -> None:
    """A trial as hpo records it: per-fold scores in fold order (None: not run), one report
    per fold at step = fold index; a pruned trial's Optuna value is its report at the
    largest step it reached, one fold's score."""
    study.add_trial(
        create_trial(
            state=state,
            value=value,
            params={"c": c},
            distributions=DIST,
            user_attrs={"fold_accuracy": folds},
            intermediate_values={i: v for i, v in enumerate(folds) if v is not None},
        )
    )


@pytest.fixture
def study_db(tmp_path: Path) -> Path:
    """Three complete trials (CV means 0.7 to 0.8) and one pruned after folds 1 and 3, whose
    Optuna value (0.15: fold 3's score) is no mean of anything."""
    db = tmp_path / "s.db"
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{db}", direction="maximize")
    study.set_user_attr("metric", "accuracy")
    for c, acc in ((0.5, 0.7), (2.0, 0.8), (5.0, 0.75)):
        _add(study, TrialState.COMPLETE, c, [acc] * 6, acc)
    _add(study, TrialState.PRUNED, 8.0, [None, 0.62, None, 0.15, None, None], 0.15)
    return db


def test_status_labels_a_pruned_trials_value_a_partial_mean(study_db: Path) -> None:
    run = CliRunner()
    res = run.invoke(cli, ["status", "--storage", str(study_db), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert row["best"]["number"] == 1 and row["best"]["label"] == "mean over 6/6 folds"
    pruned = row["best_pruned"]
    assert pruned["number"] == 3 and pruned["partial_mean"] == pytest.approx(0.385)
    assert pruned["label"] == "partial mean over 2/6 folds" and "value" not in pruned
    text = run.invoke(cli, ["status", "--storage", str(study_db)]).output
    assert (
        "best accuracy 0.8000 (trial 1): best of 3 complete trials on the 6 folds that "
        "selected it (optimistic)" in text
    )
    assert "best pruned: trial 3 accuracy 0.3850 (partial mean over 2/6 folds)" in text
    assert "0.1500" not in text


@pytest.mark.slow  # 3 to 9 s: the whole report, fANOVA included
def test_report_tables_list_pruned_trials_apart_with_their_partial_mean(
    study_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rep"
    args = ["report", "--study", "s", "--storage", str(study_db), "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    page = (out / "index.html").read_text()
    top, pruned = page.split("<h2>Top complete trials</h2>")[1].split("<h2>Pruned trials")
    assert (
        "<td>#1</td><td><b>0.8000</b></td><td>mean over 6/6 folds</td>" in top and "#3" not in top
    )
    assert "<td>#3</td><td>0.3850</td><td>partial mean over 2/6 folds</td>" in pruned
    assert "0.1500" not in page


def test_history_draws_complete_and_pruned_trials_as_separate_series(study_db: Path) -> None:
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{study_db}")
    ax = history_figure(study, "accuracy", maximize=True).axes[0]
    series = {c.get_label(): c.get_offsets().tolist() for c in ax.collections}
    assert series == {
        "complete: CV mean over 6 folds": [[0, 0.7], [1, 0.8], [2, 0.75]],
        "pruned: partial mean over the folds it ran": [[3, pytest.approx(0.385)]],
    }
    (best,) = [ln for ln in ax.lines if ln.get_label() == "best CV mean so far"]
    assert best.get_ydata().tolist() == [0.7, 0.8, 0.8]
