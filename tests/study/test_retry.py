"""Retries: the same parameters, none of the dead attempt's records; a live worker's trial is
never failed by a sweep; a fold failure outside the parameters (GPU out of memory) is queued
again instead of ending the trial PRUNED or stopping the run."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.config.study import RunSpec
from hpo.kinds.svm import objective as svm_objective
from hpo.study.orphans import fail_and_retry, fail_dead_local, worker_id
from hpo.study.storage import open_storage
from hpo.trial.cv import Retryable
from tests.helpers import ONE_FEATURE_SET, write_spec

# What a dead attempt had recorded, none of which a retry may start with.
DEAD_RECORDS = {
    "fold_accuracy": [0.5, None, None, None, None, None],
    "confusion": [[1, 0], [0, 1]],
    "folds_done": 1,
    "fail_reason": "an earlier reason",
}


def _dead_worker() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return worker_id(child.pid)


def _running_trial(study: optuna.Study, worker: str) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("C", 0.01, 100, log=True)
    for k, v in {"worker": worker, **DEAD_RECORDS}.items():
        trial.set_user_attr(k, v)
    return trial


def _by_number(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in study.get_trials(deepcopy=False)}


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_retry_starts_clean_and_the_sweep_leaves_it_to_its_live_worker(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "s.db"), RunSpec())
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    dead = _dead_worker()
    first = _running_trial(study, dead)
    assert fail_dead_local(study, storage, max_retry=3) == [first.number]
    trials = _by_number(study)
    assert trials[0].state.name == "FAIL"
    assert trials[0].user_attrs["fail_reason"] == f"worker {dead} died"
    retry = trials[1]
    assert retry.state.name == "WAITING" and retry.params == trials[0].params
    # Only what it retries and why; Optuna's retry bookkeeping kept.
    assert retry.user_attrs == {"retry_of": 0, "retry_reason": f"worker {dead} died"}
    assert retry.system_attrs["failed_trial"] == 0 and retry.system_attrs["retry_history"] == [0]
    # A live worker takes the retry: a sweep now, before or after that worker records
    # itself, leaves it running (it judged the retry by the dead attempt's worker before).
    taken = study.ask()
    assert taken.number == 1 and taken.params == trials[0].params
    assert fail_dead_local(study, storage, max_retry=3) == []
    taken.set_user_attr("worker", worker_id())
    assert fail_dead_local(study, storage, max_retry=3) == []
    assert _by_number(study)[1].state.name == "RUNNING"
    # A retry of the retry: Optuna's bookkeeping still leads back to the first attempt.
    assert fail_and_retry(study, storage, [1], max_retry=3, reason="again") == [1]
    again = _by_number(study)[2]
    assert again.user_attrs == {"retry_of": 1, "retry_reason": "again"}
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(again) == [0, 1]
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(again) == 0


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_stale_heartbeat_is_retried_clean(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "s.db"), RunSpec(heartbeat_interval=1, grace_period=2))
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = _running_trial(study, "another-host:boot:1:1:1")
    study_id = storage.get_study_id_from_name("s")
    storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(study_id, 0))
    with sqlite3.connect(tmp_path / "s.db") as con:  # its last heartbeat, an hour ago
        con.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")
    optuna.storages.fail_stale_trials(study)
    trials = _by_number(study)
    assert trials[0].state.name == "FAIL" and trials[1].params == trial.params
    # The dead attempt's own fail_reason said why it failed before, not why it stopped.
    assert trials[1].user_attrs == {"retry_of": 0, "retry_reason": "an earlier reason"}


@pytest.fixture
def spec(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        space=ONE_FEATURE_SET,
        run={"max_retry": 1},
    )


def _run(spec: Path, db: Path, n: int) -> tuple[int, str, dict[int, optuna.trial.FrozenTrial]]:
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", str(n), "--storage", str(db)]
    )
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    return res.exit_code, res.output, _by_number(study)


def _oom(fold: int) -> Retryable:
    # As the w2v fold's guard raises it: the CUDA error as its cause.
    try:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    except RuntimeError as e:
        try:
            raise Retryable(f"GPU out of memory at fold {fold}") from e
        except Retryable as r:
            return r


@pytest.mark.slow
def test_a_gpu_out_of_memory_is_queued_again_not_pruned(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = svm_objective.precomputed_svc, []

    def once_out_of_memory(svm, seed=0):
        calls.append(1)
        if len(calls) == 1:
            raise _oom(0)
        return real(svm, seed)

    monkeypatch.setattr(svm_objective, "precomputed_svc", once_out_of_memory)
    code, out, trials = _run(spec, tmp_path / "s.db", 2)
    assert code == 0 and "Traceback" not in out, out
    assert trials[0].state.name == "FAIL"
    assert trials[0].user_attrs["fail_reason"] == "GPU out of memory at fold 0"
    retry = trials[1]  # a queued trial is taken before a new one
    assert retry.user_attrs["retry_of"] == 0 and retry.params == trials[0].params
    assert retry.user_attrs["retry_reason"] == "GPU out of memory at fold 0"
    assert retry.state.name == "COMPLETE" and "fail_reason" not in retry.user_attrs
    assert "sampler_seed" in trials[0].user_attrs and "sampler_seed" not in retry.user_attrs
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials.values()) == 2
    assert "trial 0 failed: GPU out of memory at fold 0" in out
    assert "trial 0: its parameters are queued again" in out


@pytest.mark.slow
def test_out_of_memory_every_time_stops_once_the_retries_are_spent(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_out_of_memory(svm, seed=0):
        raise _oom(0)

    monkeypatch.setattr(svm_objective, "precomputed_svc", always_out_of_memory)
    code, out, trials = _run(spec, tmp_path / "s.db", 10)
    assert code == 2 and "Traceback" not in out
    assert out.strip().splitlines()[-1].startswith("hpo: error: 3 trials in a row failed")
    # max_retry = 1: each new trial and its one retry; only spent retries count.
    assert [t.state.name for t in trials.values()] == ["FAIL"] * 6
    assert [t.user_attrs.get("retry_of") for t in trials.values()] == [None, 0, None, 2, None, 4]
    assert "trial 1: not queued again" in out
    assert "trial 1: its parameters are queued again" not in out


@pytest.mark.slow
def test_a_worker_survives_its_trial_failed_by_another(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker's sweep (or a heartbeat judged stale) fails trial 0 while its fold runs
    # here: the next write of this worker then found the trial finished, and the run died.
    db = tmp_path / "s.db"
    real, calls = svm_objective.precomputed_svc, []

    def failed_elsewhere(svm, seed=0):
        calls.append(1)
        if len(calls) == 1:
            storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
            study = optuna.load_study(study_name="svm", storage=storage)
            assert fail_and_retry(study, storage, [0], 3, "worker elsewhere died") == [0]
        return real(svm, seed)

    monkeypatch.setattr(svm_objective, "precomputed_svc", failed_elsewhere)
    code, out, trials = _run(spec, db, 2)
    assert code == 0 and "Traceback" not in out, out
    line = "trial 0 was ended by another worker while it ran here (worker elsewhere died)"
    assert [ln for ln in out.splitlines() if line in ln] == [
        f"{line}; its retry is queued, going on"
    ]
    assert trials[0].state.name == "FAIL" and trials[1].user_attrs["retry_of"] == 0
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials.values()) == 2
