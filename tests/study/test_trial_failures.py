"""An unexpected error inside one trial ends that trial FAIL with its reason; the study goes
on. A setup that fails every trial stops after a few, with one line."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.kinds.svm import objective as svm_objective
from tests.helpers import ONE_FEATURE_SET, trial_states, write_spec


@pytest.fixture
def spec(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        space=ONE_FEATURE_SET,
    )


def test_one_broken_trial_fails_and_the_study_goes_on(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = svm_objective.precomputed_svc, []

    def flaky(svm, seed=0):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom in the first fold")
        return real(svm, seed)

    monkeypatch.setattr(svm_objective, "precomputed_svc", flaky)
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    assert "trial 0 failed: RuntimeError: boom in the first fold" in res.output
    states = dict(trial_states(db))
    assert (
        states[0] == "FAIL"
        and list(states.values()).count("COMPLETE") + list(states.values()).count("PRUNED") == 2
    )
    t0 = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").trials[0]
    assert t0.user_attrs["fail_reason"] == "RuntimeError: boom in the first fold"


def test_a_setup_that_breaks_every_trial_stops_with_one_line(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(svm, seed=0):
        raise ValueError("always")

    monkeypatch.setattr(svm_objective, "precomputed_svc", broken)
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "10", "--storage", str(db)]
    )
    out = res.output.strip().splitlines()
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert out[-1] == (
        "hpo: error: 3 trials in a row failed, the last with ValueError: always; "
        "finished trials are kept (see 'hpo status')"
    )
    assert [s for _, s in trial_states(db)] == ["FAIL"] * 3
