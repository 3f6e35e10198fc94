"""``hpo run --warm-start SOURCE[:K]``: another study's best complete trials run first, once."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.cli import cli
from hpo.errors import HpoError
from hpo.kinds import load_spec
from hpo.study.warm import fit_params, parse_warm_start
from tests.helpers import ONE_FEATURE_SET, trial_states, write_spec

DISTS = {
    "feature_set": CategoricalDistribution(["librosa", "compare"]),
    "kernel": CategoricalDistribution(["rbf", "linear"]),
    "C": FloatDistribution(1e-4, 1e5, log=True),
    "gamma": FloatDistribution(1e-4, 10.0, log=True),
    "other": FloatDistribution(0.0, 1.0),
}
# (state, value, params) of the source study; the two best complete ones are 2 and 0.
SOURCE = [
    (
        TrialState.COMPLETE,
        0.70,
        {"feature_set": "librosa", "kernel": "linear", "C": 5000.0, "other": 0.5},
    ),
    (TrialState.PRUNED, 0.99, {"feature_set": "librosa", "kernel": "linear", "C": 1.0}),
    (
        TrialState.COMPLETE,
        0.80,
        {"feature_set": "compare", "kernel": "rbf", "C": 2.0, "gamma": 0.05},
    ),
    (TrialState.COMPLETE, 0.60, {"feature_set": "librosa", "kernel": "linear", "C": 0.1}),
]


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def _source(db: Path, name: str = "src", rows=SOURCE) -> None:
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name=name, direction="maximize")
    for state, value, params in rows:
        dists = {k: DISTS[k] for k in params}
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                intermediate_values={0: value} if state == TrialState.PRUNED else None,
                params=params,
                distributions=dists,
            )
        )


@pytest.fixture
def study_file(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
    )


def test_warm_start_queues_the_best_complete_first_and_never_twice(
    tmp_path: Path, study_file: Path
) -> None:
    db = tmp_path / "s.db"
    _source(db)
    args = ["run", "--study", str(study_file), "--storage", str(db), "--warm-start", "src:2"]
    code, out = _run(*args, "--n-trials", "3")
    assert code == 0, out
    assert "queued 2 configuration(s) of study 'src' (its trials 2, 0)" in out
    # C = 5000 is outside the shipped [0.01, 1000]: clipped, and said.
    assert "'C' = 5000 is outside [0.01, 1000]; 1000" in out
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    first, second = study.trials[0], study.trials[1]
    # The best complete source trial (2, 0.80) runs first, then trial 0; the pruned 0.99
    # (one fold's score) is never taken. 'compare' is not a choice of this space: the sampler
    # picks the feature set; 'other' is not in the space at all.
    assert first.user_attrs["warm_start_from"] == "src#2"
    assert {k: first.params[k] for k in ("kernel", "C", "gamma")} == {
        "kernel": "rbf",
        "C": 2.0,
        "gamma": 0.05,
    }
    assert first.params["feature_set"] == "librosa"
    assert second.user_attrs["warm_start_from"] == "src#0"
    assert second.params["kernel"] == "linear" and second.params["C"] == 1000.0
    assert "other" not in second.params and "gamma" not in second.params
    assert "warm_start_from" not in study.trials[2].user_attrs
    assert study.user_attrs["warm_start"] == ["src#2", "src#0"]

    # Resumed with the same option: nothing queued again, the study goes on sampling.
    code, out = _run(*args, "--n-trials", "5")
    assert code == 0, out
    assert "2 queued by an earlier run, not again" in out
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    warm = [t.number for t in study.trials if "warm_start_from" in t.user_attrs]
    assert warm == [0, 1] and len(study.trials) == 5


def test_warm_start_from_another_storage(tmp_path: Path, study_file: Path) -> None:
    other, db = tmp_path / "other.db", tmp_path / "s.db"
    _source(other)
    code, out = _run(
        "run", "--study", str(study_file), "--storage", str(db), "--n-trials", "1",
        "--warm-start", "src:1", "--warm-start-storage", str(other),
    )  # fmt: skip
    assert code == 0, out
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    assert study.trials[0].user_attrs["warm_start_from"] == "src#2"


@pytest.mark.parametrize(
    ("source", "rows", "message"),
    [
        ("nope", SOURCE, "--warm-start: no study named 'nope' in this storage (studies: src)"),
        ("src", SOURCE[1:2], "--warm-start: study 'src' has no complete trials to start from"),
    ],
)
def test_bad_warm_start_source_is_refused_before_anything_is_created(
    tmp_path: Path, study_file: Path, source: str, rows: list, message: str
) -> None:
    db = tmp_path / "s.db"
    _source(db, rows=rows)
    code, out = _run(
        "run", "--study", str(study_file), "--storage", str(db), "--warm-start", source
    )  # fmt: skip
    assert code == 2
    assert out.strip() == f"hpo: error: {message}"
    # The study being run was never created.
    assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")] == ["src"]
    assert trial_states(db, "svm") == []


@pytest.mark.parametrize("text", ["src:0", "src:x", ":3", "src:"])
def test_warm_start_option_must_be_study_or_study_colon_k(text: str) -> None:
    with pytest.raises(HpoError, match="--warm-start"):
        parse_warm_start(text)
    assert parse_warm_start("a.b-c:3").k == 3 and parse_warm_start("a").source == "a"


def test_fit_params_keeps_only_what_the_space_takes() -> None:
    space = load_spec("svm").space
    kept, notes = fit_params(
        {"kernel": "linear", "C": 0.0001, "gamma": 0.5, "degree": 9, "select_k": 250}, space
    )
    # gamma and degree are inactive for a linear kernel; 250 is not a select_k choice.
    assert kept == {"kernel": "linear", "C": 0.01}
    assert any("'select_k' = 250 is not a choice" in n for n in notes)
    kept, _ = fit_params({"kernel": "poly", "C": 1.0, "degree": 9}, space)
    assert kept["degree"] == 4  # clipped into [2, 4]
