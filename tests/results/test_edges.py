"""Edge and plateau warnings: `hpo status` (text, --json) and `hpo report` on studies made to
hit them, with the analysis itself checked on hand-built trials."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import optuna
import pytest
import tomli_w
from click.testing import CliRunner
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import create_trial

from hpo.cli import cli
from hpo.results.edges import edge_warnings, plateau_warnings, space_checks
from tests.helpers import write_spec


def _with_space(path: Path, space: dict) -> Path:
    """The study file at ``path`` with its whole [space] replaced by ``space``."""
    raw = tomllib.loads(path.read_text())
    path.write_text(tomli_w.dumps({**raw, "space": space}))
    return path


C = FloatDistribution(0.01, 1000.0, log=True)
COEF0 = FloatDistribution(0.0, 1.0)
DEGREE = IntDistribution(2, 4)
KERNEL = CategoricalDistribution(["linear", "rbf"])


def _trial(value: float, **params: object) -> optuna.trial.FrozenTrial:
    dists = {"C": C, "coef0": COEF0, "degree": DEGREE, "kernel": KERNEL}
    return create_trial(value=value, params=params, distributions={k: dists[k] for k in params})


def test_edge_is_the_outer_five_percent_of_the_log_range() -> None:
    # log10 range [-2, 3]: the lower 5% ends at 10^-1.75 = 0.0178, the upper starts at 562.
    (w,) = edge_warnings(_trial(0.7, C=0.0108))
    assert w["message"] == "C = 0.0108 is at the lower edge of [0.01, 1000]: widen the range"
    assert (w["param"], w["side"], w["low"], w["high"], w["log"]) == (
        "C",
        "lower",
        0.01,
        1000.0,
        True,
    )
    assert edge_warnings(_trial(0.7, C=0.0179)) == []  # just inside
    (w,) = edge_warnings(_trial(0.7, C=600.0))
    assert w["message"] == "C = 600 is at the upper edge of [0.01, 1000]: widen the range"
    assert edge_warnings(_trial(0.7, C=550.0)) == []


def test_no_edge_warning_before_five_complete_trials() -> None:
    # The demo's first trials drew C at random: one at the edge is no reason to widen yet.
    trials = [_trial(0.5 + i / 100, C=700.0 - i) for i in range(5)]
    best = trials[-1]
    assert space_checks(trials[:4], best, "accuracy")["warnings"] == []
    (w,) = space_checks(trials, best, "accuracy")["warnings"]
    assert w["kind"] == "edge" and w["param"] == "C" and w["side"] == "upper"


def test_edge_on_linear_and_int_ranges_and_never_on_a_choice() -> None:
    # A linear range's edge is 5% of its width; an int's end is an edge too.
    ws = edge_warnings(_trial(0.7, coef0=0.97, degree=2, kernel="linear"))
    assert [w["message"] for w in ws] == [
        "coef0 = 0.97 is at the upper edge of [0, 1]: widen the range",
        "degree = 2 is at the lower edge of [2, 4]: widen the range",
    ]
    assert edge_warnings(_trial(0.7, coef0=0.5, degree=3, kernel="rbf")) == []


def test_plateau_names_what_varies_and_what_is_shared() -> None:
    flat = [_trial(0.658123, C=c, kernel="linear") for c in (0.011, 0.5, 3.0, 40.0, 561.0)]
    others = [_trial(0.5 + i / 100, C=1.0, kernel="rbf") for i in range(5)]
    (w,) = plateau_warnings(flat + others, "accuracy")
    assert w["message"] == (
        "5 of 10 complete trials scored accuracy 0.6581, all with kernel = linear "
        "(C from 0.011 to 561): a plateau where C does nothing; narrow the range"
    )
    assert w["trials"] == 5 and w["varying"] == {"C": [0.011, 561.0]}
    assert w["fixed"] == {"kernel": "linear"}
    # Four tied trials are not yet a plateau; in 100 trials, 10 are (9 are not).
    assert plateau_warnings(flat[:4] + others, "accuracy") == []
    many = [_trial(i / 1000, C=1.0) for i in range(91)]
    assert plateau_warnings(many + [_trial(0.9, C=c) for c in range(1, 10)], "uar") == []
    ten = plateau_warnings(many[:90] + [_trial(0.9, C=c) for c in range(1, 11)], "uar")
    assert [w["trials"] for w in ten] == [10]
    checks = space_checks(flat + others, flat[0], "accuracy")
    assert checks["largest_tie"] == {"value": 0.6581, "trials": 5}


def test_equal_means_are_no_plateau_unless_every_fold_is_equal() -> None:
    # Near an optimum, trials reach the same mean accuracy with different folds: TPE at
    # work, not a plateau. The same score on every fold is one.
    def trial(c: float, folds: list[float]) -> optuna.trial.FrozenTrial:
        t = _trial(sum(folds) / 3, C=c, kernel="linear")
        t.set_user_attr("fold_accuracy", folds)
        return t

    near = [
        trial(c, [0.8, 0.7, 0.6] if i % 2 else [0.7, 0.6, 0.8])
        for i, c in enumerate((1, 2, 3, 4, 5, 6))
    ]
    assert plateau_warnings(near, "accuracy") == []
    assert space_checks(near, near[0], "accuracy")["largest_tie"]["trials"] == 6
    flat = [trial(c, [0.8, 0.7, 0.6]) for c in (1, 2, 3, 4, 5)]
    (w,) = plateau_warnings(flat + near[:1], "accuracy")
    assert w["same_on_every_fold"] and w["trials"] == 5 and w["varying"] == {"C": [1, 5]}
    assert "scored accuracy 0.7000 on every fold alike" in w["message"]


def _enqueued_study(tmp_path: Path, prepared: Path, cs: list[float], fs: str = "librosa") -> Path:
    """A real SVM study whose trials are the enqueued C values (linear, scale-free)."""
    spec = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        pruner={"type": "none"},
        objective={"metric": "accuracy"},  # what these checks read (shipped: uar)
    )
    _with_space(
        spec,
        {
            "feature_set": {"type": "categorical", "choices": [fs]},
            "speaker_norm": {"type": "categorical", "choices": [True]},
            "kernel": {"type": "categorical", "choices": ["linear"]},
            "C": {"type": "float", "low": 0.001, "high": 1000.0, "log": True},
        },
    )
    db = tmp_path / "s.db"
    study = optuna.create_study(study_name="svm", storage=f"sqlite:///{db}", direction="maximize")
    for c in cs:
        study.enqueue_trial({"feature_set": fs, "speaker_norm": True, "kernel": "linear", "C": c})
    args = ["run", "--study", str(spec), "--n-trials", str(len(cs)), "--storage", str(db)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    return db


def test_status_and_report_warn_on_a_study_at_the_edge(tmp_path: Path, prepared: Path) -> None:
    # Every trial in the lowest 5% of [0.001, 1000] (below 0.002): the best is at the edge.
    db = _enqueued_study(tmp_path, prepared, [0.0011, 0.0012, 0.0014, 0.0016, 0.0018])
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    best_c = study.best_params["C"]
    # ... with the command that widens it, as `hpo study widen` takes it (tests/study/test_widen.py
    # runs one as printed): [0.001, 1000] spans 6 decades, the low end moves down 3.
    command = f"hpo study widen --study svm --storage {db} --param C --low 1e-06"
    expected = f"C = {best_c:.2g} is at the lower edge of [0.001, 1000]: widen the range: {command}"
    run = CliRunner()
    res = run.invoke(cli, ["status", "--storage", str(db), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    edges = [w for w in row["warnings"] if w["kind"] == "edge"]
    assert [w["message"] for w in edges] == [expected]
    assert edges[0]["param"] == "C" and edges[0]["side"] == "lower"
    assert edges[0]["command"] == command
    assert edges[0]["value"] == pytest.approx(best_c)
    res = run.invoke(cli, ["status", "--storage", str(db)])
    assert res.exit_code == 0 and f"  warning: {expected}\n" in res.output
    out = tmp_path / "rep"
    res = run.invoke(cli, ["report", "--study", "svm", "--storage", str(db), "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "index.html").read_text()
    assert "<h2>Search space</h2><ul class=warn>" in page and f"<li>{expected}</li>" in page


def test_status_and_report_name_a_plateau(tmp_path: Path, prepared: Path) -> None:
    # 403 librosa features, 320 training clips a fold: separable, so a linear SVM reaches its
    # hard margin and every larger C scores the same to the last digit.
    db = _enqueued_study(tmp_path, prepared, [50.0, 100.0, 200.0, 400.0, 700.0], fs="librosa")
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    values = {t.value for t in study.trials}
    assert len(values) == 1
    expected = (
        f"5 of 5 complete trials scored accuracy {values.pop():.4f} on every fold alike, all with "
        "feature_set = librosa, speaker_norm = True, kernel = linear (C from 50 to 700): "
        "a plateau where C does nothing; narrow the range"
    )
    res = CliRunner().invoke(cli, ["status", "--storage", str(db), "--json"])
    (row,) = json.loads(res.output)
    (w,) = row["warnings"]  # C = 50 is in the middle of [0.001, 1000]: no edge
    assert w["kind"] == "plateau" and w["message"] == expected
    assert w["numbers"] == [0, 1, 2, 3, 4] and w["varying"] == {"C": [50.0, 700.0]}
    assert row["largest_tie"]["trials"] == 5
    res = CliRunner().invoke(cli, ["status", "--storage", str(db)])
    assert f"  warning: {expected}\n" in res.output
