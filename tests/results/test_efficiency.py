"""The report's history shows the search's own efficiency: the best CV mean so far against
trials and against search time, pruned trials marked (issue #27, item 6)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from hpo.cli import cli
from hpo.results.efficiency import efficiency_sentence, search_efficiency
from hpo.results.report import history_figure

T0 = datetime(2026, 1, 5, 9, 0, 0)
DAY = timedelta(days=1)


def _trial(number: int, state: TrialState, folds: list, start: float, end: float, at=T0):
    """A trial as hpo records it (per-fold scores, None: not run), from ``start`` to ``end``
    seconds after ``at``; a pruned trial's Optuna value is one fold's score."""
    ran = [v for v in folds if v is not None]
    value = (
        None
        if state == TrialState.FAIL
        else (sum(ran) / len(ran) if state == TrialState.COMPLETE else ran[-1])
    )
    return FrozenTrial(
        number=number,
        state=state,
        value=value,
        datetime_start=at + timedelta(seconds=start),
        datetime_complete=at + timedelta(seconds=end),
        params={"c": 1.0 + number},
        distributions={"c": FloatDistribution(0.1, 10.0, log=True)},
        user_attrs={"fold_uar": folds},
        system_attrs={},
        intermediate_values={i: v for i, v in enumerate(folds) if v is not None},
        trial_id=number,
    )


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    """Two workers at first (trial 3 ends before trial 2, which started earlier), then a
    resume a day later: a failed trial, and a pruned one."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    s = optuna.create_study(study_name="eff", storage=url, direction="maximize")
    s.set_user_attr("metric", "uar")
    full = lambda v: [v] * 4  # noqa: E731
    for t in (
        _trial(0, TrialState.COMPLETE, full(0.6), 0, 60),
        _trial(1, TrialState.PRUNED, [0.2, 0.4, None, None], 60, 90),
        _trial(2, TrialState.COMPLETE, full(0.8), 90, 300),
        _trial(3, TrialState.COMPLETE, full(0.7), 120, 180),
        _trial(4, TrialState.COMPLETE, full(0.75), 0, 120, at=T0 + DAY),
        _trial(5, TrialState.FAIL, [None] * 4, 120, 150, at=T0 + DAY),
        _trial(6, TrialState.PRUNED, [0.1, 0.3, None, None], 150, 180, at=T0 + DAY),
    ):
        s.add_trial(t)
    return s


def test_best_so_far_against_trials_and_search_time(study: optuna.Study) -> None:
    eff = search_efficiency(study.trials, "uar", maximize=True)
    # Against trials: by trial number, over complete trials only.
    assert eff.best_by_trial == [(0, 0.6), (2, 0.8), (3, 0.8), (4, 0.8)]
    # Against time: in the order trials ended (trial 3 before trial 2), on the time some
    # trial was running: the day between the runs is left out, the failed trial's 30 s
    # are in, and overlapping trials are not counted twice.
    assert eff.best_by_time == [(60.0, 0.6), (180.0, 0.7), (300.0, 0.8), (420.0, 0.8)]
    assert eff.total_seconds == 480.0
    assert [(p.number, p.pruned, p.seconds) for p in eff.by_time] == [
        (0, False, 60.0),
        (1, True, 90.0),
        (3, False, 180.0),
        (2, False, 300.0),
        (4, False, 420.0),
        (6, True, 480.0),
    ]


def test_the_figure_draws_both_panels_with_pruned_trials_marked(study: optuna.Study) -> None:
    by_trial, by_time = history_figure(study, "uar", maximize=True).axes
    for ax, x in ((by_trial, lambda n, sec: n), (by_time, lambda n, sec: sec / 60)):  # minutes
        series = {c.get_label(): c.get_offsets().tolist() for c in ax.collections}
        # Pruned trials are their own series, at their partial mean over the folds they ran.
        assert series["pruned: partial mean over the folds it ran"] == [
            [x(1, 90), pytest.approx(0.3)],
            [x(6, 480), pytest.approx(0.2)],
        ]
        assert [p[0] for p in series["complete: CV mean over 4 folds"]] == [
            x(n, s) for n, s in ((0, 60), (2, 300), (3, 180), (4, 420))
        ]
    (trial_line,) = [ln for ln in by_trial.lines if ln.get_label() == "best CV mean so far"]
    assert trial_line.get_xdata().tolist() == [0, 2, 3, 4]
    assert trial_line.get_ydata().tolist() == [0.6, 0.8, 0.8, 0.8]
    (time_line,) = [ln for ln in by_time.lines if ln.get_label() == "best CV mean so far"]
    assert time_line.get_xdata().tolist() == [1.0, 3.0, 5.0, 7.0]
    assert time_line.get_ydata().tolist() == [0.6, 0.7, 0.8, 0.8]
    assert "search time (min" in by_time.get_xlabel()


def test_the_caption_says_when_the_best_came(study: optuna.Study) -> None:
    text = efficiency_sentence(search_efficiency(study.trials, "uar", True), "uar")
    assert text == (
        "The best CV mean uar (0.8000, trial #2) came after 3 of 6 finished trials and 5 of "
        "8 min of search time (62%); the 3 finished trials since did not improve it. 2 of 6 "
        "were pruned."
    )


def test_the_json_report_carries_the_same_numbers(study: optuna.Study, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    out = tmp_path / "rep"
    args = ["report", "--study", "eff", "--storage", str(db), "--format", "json", "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    eff = json.loads((out / "report.json").read_text())["efficiency"]
    assert eff == {
        "best": 0.8,
        "trial": 2,
        "finished_to_reach": 3,
        "finished": 6,
        "pruned": 2,
        "seconds_to_reach": 300.0,
        "total_seconds": 480.0,
        "since": 3,
    }
