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

import pytest

from tests.helpers import ROOT, trial_states, write_spec


def _start(spec: Path, db: Path, n: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpo",
            "run",
            "--study",
            str(spec),
            "--n-trials",
            str(n),
            "--storage",
            str(db),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_running(db: Path, proc: subprocess.Popen, known: set[int], timeout: float = 90) -> bool:
    """Poll the database until a trial this process started is RUNNING."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if db.exists():
            try:
                running = [n for n, s in trial_states(db) if s == "RUNNING" and n not in known]
                # Mid-trial: all parameters sampled and at least one fold scored.
                if running and running[0] in _folds_started(db):
                    return True
            except sqlite3.OperationalError:
                pass  # tables not created yet
        time.sleep(0.005)
    return False


def _folds_started(db: Path) -> set[int]:
    con = sqlite3.connect(db)
    try:
        return {
            n
            for (n,) in con.execute(
                "SELECT t.number FROM trial_user_attributes a JOIN trials t "
                "ON t.trial_id = a.trial_id WHERE a.key = 'folds_done'"
            )
        }
    finally:
        con.close()


def _system_attrs(db: Path) -> dict[int, dict]:
    con = sqlite3.connect(db)
    try:
        out: dict[int, dict] = {}
        for number, key, value in con.execute(
            "SELECT t.number, a.key, a.value_json FROM trial_system_attributes a "
            "JOIN trials t ON t.trial_id = a.trial_id"
        ):
            out.setdefault(number, {})[key] = json.loads(value)
        return out
    finally:
        con.close()


def _params(db: Path) -> dict[int, dict]:
    con = sqlite3.connect(db)
    try:
        out: dict[int, dict] = {}
        for number, name, value in con.execute(
            "SELECT t.number, p.param_name, p.param_value FROM trial_params p "
            "JOIN trials t ON t.trial_id = p.trial_id"
        ):
            out.setdefault(number, {})[name] = value
        return out
    finally:
        con.close()


def _values(db: Path) -> dict[int, float]:
    con = sqlite3.connect(db)
    try:
        return dict(
            con.execute(
                "SELECT t.number, v.value FROM trial_values v "
                "JOIN trials t ON t.trial_id = v.trial_id"
            )
        )
    finally:
        con.close()


@pytest.fixture
def fast_heartbeat_spec(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        run={"heartbeat_interval": 1, "grace_period": 3, "max_retry": 5},
        sampler={"n_startup_trials": 3},
    )


def test_sigkill_mid_trial_is_failed_by_heartbeat_and_retried(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    db = tmp_path / "s.db"
    n = 6
    killed: int | None = None
    for _ in range(20):  # until a kill lands while a trial is running
        known = {t for t, _ in trial_states(db)} if db.exists() else set()
        proc = _start(fast_heartbeat_spec, db, n)
        assert _wait_running(db, proc, known), proc.communicate()[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        running = [t for t, s in trial_states(db) if s == "RUNNING"]
        if running:
            killed = running[0]
            break
    assert killed is not None, "never caught a trial mid-run"
    finished_before = {t: v for t, v in _values(db).items()}
    killed_params = _params(db)[killed]

    proc = _start(fast_heartbeat_spec, db, n)
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, out
    states = dict(trial_states(db))
    assert states[killed] == "FAIL"  # failed by the heartbeat check, not left RUNNING
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == n
    assert "RUNNING" not in states.values() and "WAITING" not in states.values()
    retries = [t for t, a in _system_attrs(db).items() if a.get("failed_trial") == killed]
    assert len(retries) == 1
    assert states[retries[0]] in ("COMPLETE", "PRUNED")
    assert _params(db)[retries[0]] == killed_params  # retried with the same parameters
    after = _values(db)
    for t, v in finished_before.items():  # no finished trial lost or changed
        assert after[t] == v


def test_ctrl_c_stops_cleanly_and_queues_the_trial_again(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    db = tmp_path / "s.db"
    interrupted: int | None = None
    for _ in range(20):
        known = {t for t, _ in trial_states(db)} if db.exists() else set()
        proc = _start(fast_heartbeat_spec, db, 6)
        assert _wait_running(db, proc, known), proc.communicate()[0]
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 130, out
        assert "Traceback" not in out and "run the same command to resume" in out
        fails = [t for t, s in trial_states(db) if s == "FAIL" and t not in known]
        if fails:
            interrupted = fails[0]
            break
    assert interrupted is not None
    states = dict(trial_states(db))
    assert "RUNNING" not in states.values()
    waiting = [t for t, s in states.items() if s == "WAITING"]
    assert len(waiting) == 1 and _params(db)[waiting[0]] == _params(db)[interrupted]
    proc = _start(fast_heartbeat_spec, db, 6)
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, out
    assert dict(trial_states(db))[waiting[0]] in ("COMPLETE", "PRUNED")


@pytest.mark.slow
def test_ten_sigkills_lose_no_finished_trial(tmp_path: Path, fast_heartbeat_spec: Path) -> None:
    db = tmp_path / "s.db"
    n = 30
    finished: dict[int, float] = {}
    kills = 0
    for _ in range(40):
        if kills == 10:
            break
        known = {t for t, _ in trial_states(db)} if db.exists() else set()
        proc = _start(fast_heartbeat_spec, db, n)
        if not _wait_running(db, proc, known):
            break  # the study completed before a kill could land
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        values = _values(db)
        for t, v in finished.items():  # every trial finished before this kill is intact
            assert values[t] == v
        finished = {
            t: v for t, v in values.items() if dict(trial_states(db))[t] in ("COMPLETE", "PRUNED")
        }
    assert kills == 10
    proc = _start(fast_heartbeat_spec, db, n)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    states = dict(trial_states(db))
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == n
    assert "RUNNING" not in states.values()
    values = _values(db)
    assert all(values[t] == v for t, v in finished.items())


def test_a_dead_worker_on_this_machine_is_retried_at_once(tmp_path: Path, prepared: Path) -> None:
    # A 600 s grace period, as for w2v: the heartbeat rule alone would make the resumed run
    # wait ten minutes before retrying the killed trial.
    spec = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        run={"heartbeat_interval": 30, "grace_period": 600, "max_retry": 3},
        sampler={"n_startup_trials": 3},
    )
    db = tmp_path / "s.db"
    killed = None
    for _ in range(20):
        known = {t for t, _ in trial_states(db)} if db.exists() else set()
        proc = _start(spec, db, 4)
        assert _wait_running(db, proc, known), proc.communicate()[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        running = [t for t, s in trial_states(db) if s == "RUNNING"]
        if running:
            killed = running[0]
            break
    assert killed is not None
    start = time.time()
    proc = _start(spec, db, 4)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert time.time() - start < 90  # not the 600 s grace period
    states = dict(trial_states(db))
    assert states[killed] == "FAIL"
    retries = [t for t, a in _system_attrs(db).items() if a.get("failed_trial") == killed]
    assert len(retries) == 1 and states[retries[0]] in ("COMPLETE", "PRUNED")


def test_only_this_hosts_dead_processes_count_as_dead() -> None:
    import socket

    from hpo.study.orphans import _dead_here, worker_id

    assert not _dead_here(worker_id())  # this very process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert _dead_here(worker_id(child.pid).replace(":-", ":1"))  # gone
    me = worker_id()
    host, pid, start = me.split(":")
    assert _dead_here(f"{host}:{pid}:{int(start) + 1}")  # the pid was reused by another
    assert not _dead_here(f"other-{socket.gethostname()}:{child.pid}:1")  # heartbeat rule
    assert not _dead_here("")  # a trial that never recorded its worker
