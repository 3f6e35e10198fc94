"""Crash safety with real processes: SIGKILL (heartbeat retry) and Ctrl-C (clean stop)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.helpers import ONE_FEATURE_SET, ROOT, trial_states, write_spec


class _Run:
    """``hpo run`` in its own process; with ``die_after`` it signals itself right after that
    many folds (tests/die_after_fold.py), so the signal lands mid-trial every time."""

    def __init__(
        self, spec: Path, db: Path, n: int, die_after: int | None = None, sig: str = "SIGKILL"
    ) -> None:
        module = "hpo" if die_after is None else "tests.die_after_fold"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if die_after is not None:
            env |= {"HPO_TEST_DIE_AFTER_FOLD": str(die_after), "HPO_TEST_SIGNAL": sig}
        cmd = [sys.executable, "-m", module, "run", "--study", str(spec), "--n-trials", str(n)]
        self.proc = subprocess.run(
            [*cmd, "--storage", str(db)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            timeout=300,
        )
        self.out = self.proc.stdout


def _die_after(spec: Path, db: Path, n: int, folds: int, sig: str = "SIGKILL") -> _Run:
    """A run that signals itself after its ``folds``-th fold; it must have died of it."""
    run = _Run(spec, db, n, die_after=folds, sig=sig)
    if sig == "SIGKILL":
        assert run.proc.returncode == -signal.SIGKILL, run.out
    return run


def _trials(db: Path) -> dict[int, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    return {t.number: t for t in study.get_trials(deepcopy=False)}


def _params(db: Path) -> dict[int, dict]:
    return {n: t.params for n, t in _trials(db).items()}


def _values(db: Path) -> dict[int, float]:
    return {n: t.value for n, t in _trials(db).items() if t.value is not None}


def _retries_of(db: Path, number: int) -> list[int]:
    """The trials queued again for trial ``number`` (Optuna's retry records its origin)."""
    return [n for n, t in _trials(db).items() if t.system_attrs.get("failed_trial") == number]


def _move_to_another_host(db: Path, number: int) -> None:
    """Record trial ``number``'s worker as another machine's: only its heartbeat can then
    tell that it died (this machine's own dead workers are failed at once)."""
    con = sqlite3.connect(db)
    with con:
        cur = con.execute(
            "UPDATE trial_user_attributes SET value_json = ? WHERE key = 'worker' AND "
            "trial_id = (SELECT trial_id FROM trials WHERE number = ?)",
            (json.dumps("another-host:1:1"), number),
        )
    con.close()
    assert cur.rowcount == 1


@pytest.fixture
def fast_heartbeat_spec(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        run={"heartbeat_interval": 1, "grace_period": 3, "max_retry": 5},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
    )


# A study's first trial is never pruned (there is no best to compare with) and every trial
# has six folds: a run that dies after its 7th fold has trial 0 COMPLETE and trial 1
# RUNNING with one fold recorded.
AFTER_ONE_TRIAL = 7


@pytest.mark.slow
def test_sigkill_mid_trial_is_failed_by_heartbeat_and_retried(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    db = tmp_path / "s.db"
    n = 4
    _die_after(fast_heartbeat_spec, db, n, AFTER_ONE_TRIAL)
    assert trial_states(db) == [(0, "COMPLETE"), (1, "RUNNING")]
    killed = 1
    _move_to_another_host(db, killed)
    finished_before = _values(db)
    killed_params = _params(db)[killed]

    run = _Run(fast_heartbeat_spec, db, n)
    assert run.proc.returncode == 0, run.out
    states = dict(trial_states(db))
    assert states[killed] == "FAIL"  # failed by the heartbeat check, not left RUNNING
    # Optuna's stale-heartbeat rule, which records no reason; not the dead-worker rule.
    assert "fail_reason" not in _trials(db)[killed].user_attrs
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == n
    assert "RUNNING" not in states.values() and "WAITING" not in states.values()
    retries = _retries_of(db, killed)
    assert len(retries) == 1
    assert states[retries[0]] in ("COMPLETE", "PRUNED")
    assert _params(db)[retries[0]] == killed_params  # retried with the same parameters
    retry = _trials(db)[retries[0]]
    assert retry.user_attrs["retry_of"] == killed
    assert retry.user_attrs["retry_reason"] == "heartbeat stopped (worker another-host:1:1)"
    assert retry.user_attrs["worker"] != "another-host:1:1"  # its own, not the dead one's
    after = _values(db)
    assert finished_before and all(after[t] == v for t, v in finished_before.items())


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_queues_the_trial_again(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    db = tmp_path / "s.db"
    run = _die_after(fast_heartbeat_spec, db, 4, 1, sig="SIGINT")  # trial 0, first fold
    assert run.proc.returncode == 130, run.out
    assert "Traceback" not in run.out and "run the same command to resume" in run.out
    states = dict(trial_states(db))
    assert states[0] == "FAIL" and "RUNNING" not in states.values()
    waiting = [t for t, s in states.items() if s == "WAITING"]
    assert len(waiting) == 1 and _params(db)[waiting[0]] == _params(db)[0]
    assert _trials(db)[waiting[0]].user_attrs == {
        "retry_of": 0,
        "retry_reason": "interrupted (Ctrl-C)",
    }
    run = _Run(fast_heartbeat_spec, db, 4)
    assert run.proc.returncode == 0, run.out
    assert dict(trial_states(db))[waiting[0]] in ("COMPLETE", "PRUNED")


@pytest.mark.slow
def test_repeated_sigkills_lose_no_finished_trial(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    # Two kills, each after its run's 7th fold: the first run has finished trial 0; the
    # second first retries the trial the first kill lost (its 6 folds, or fewer if pruned)
    # and dies in the trial after it, so it lands on a study holding finished trials.
    db = tmp_path / "s.db"
    n = 6
    finished: dict[int, float] = {}
    for _ in range(2):
        _die_after(fast_heartbeat_spec, db, n, AFTER_ONE_TRIAL)
        values = _values(db)
        for t, v in finished.items():  # every trial finished before this kill is intact
            assert values[t] == v
        states = dict(trial_states(db))
        assert list(states.values()).count("RUNNING") == 1  # it died mid-trial
        finished = {t: v for t, v in values.items() if states[t] in ("COMPLETE", "PRUNED")}
    assert len(finished) >= 2  # one a run, so every kill had finished trials to lose
    run = _Run(fast_heartbeat_spec, db, n)
    assert run.proc.returncode == 0, run.out
    states = dict(trial_states(db))
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == n
    assert "RUNNING" not in states.values()
    values = _values(db)
    assert all(values[t] == v for t, v in finished.items())


@pytest.mark.slow
def test_a_dead_worker_on_this_machine_is_retried_at_once(tmp_path: Path, prepared: Path) -> None:
    # A 600 s grace period, as for w2v: the heartbeat rule alone would make the resumed run
    # wait ten minutes before retrying the killed trial.
    spec = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        run={"heartbeat_interval": 30, "grace_period": 600, "max_retry": 3},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
    )
    db = tmp_path / "s.db"
    _die_after(spec, db, 3, 1)  # trial 0, first fold
    assert trial_states(db) == [(0, "RUNNING")]
    killed = 0
    start = time.time()
    run = _Run(spec, db, 3)
    assert run.proc.returncode == 0, run.out
    assert time.time() - start < 90  # not the 600 s grace period
    states = dict(trial_states(db))
    assert states[killed] == "FAIL"
    assert _trials(db)[killed].user_attrs["fail_reason"].endswith(" died")
    retries = _retries_of(db, killed)
    assert len(retries) == 1 and states[retries[0]] in ("COMPLETE", "PRUNED")
    # The retry that finished shows no reason of the dead attempt's (it used to).
    retry = _trials(db)[retries[0]].user_attrs
    assert "fail_reason" not in retry and retry["retry_reason"].endswith(" died")


def test_only_this_hosts_dead_processes_count_as_dead() -> None:
    from hpo.study.orphans import _dead_here, worker_id

    assert not _dead_here(worker_id())  # this very process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert _dead_here(worker_id(child.pid).replace(":-", ":1"))  # gone
    host, boot, namespace, pid, start = worker_id().split(":")  # host names hold no ':'
    assert _dead_here(f"{host}:{boot}:{namespace}:{pid}:{float(start) + 1:.2f}")  # pid reused
    # Other machines, other boots, other pid namespaces (containers sharing the host's
    # name), and ids without a namespace (older hpo) keep the heartbeat rule.
    assert not _dead_here(f"other-{host}:{boot}:{namespace}:{child.pid}:1")
    assert not _dead_here(f"{host}:other:{namespace}:{child.pid}:1")
    assert not _dead_here(f"{host}:{boot}:{namespace}0:{child.pid}:1")
    assert not _dead_here(f"{host}:{child.pid}:1")
    assert not _dead_here("")  # a trial that never recorded its worker


def test_a_live_worker_in_another_pid_namespace_is_not_taken_for_dead() -> None:
    # A container that shares this host's name runs its worker as pid 1 of its own pid
    # namespace; here pid 1 is another process, started long before: judged by host name
    # and pid alone, that live worker was "dead" (its pid reused) and its trial failed.
    code = "from hpo.study.orphans import worker_id; print(worker_id(), flush=True); input()"
    cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable]
    try:
        proc = subprocess.Popen(
            [*cmd, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
    except FileNotFoundError:
        pytest.skip("no unshare here")
    try:
        assert proc.stdout is not None
        contained = proc.stdout.readline().strip()
        if not contained:
            pytest.skip("unshare may not create a pid namespace here")
        from hpo.study.orphans import _dead_here

        assert contained.split(":")[-2] == "1"  # pid 1 over there
        assert not _dead_here(contained)
    finally:
        proc.kill()
        proc.wait()
