"""Crash safety with real processes: SIGKILL (heartbeat retry) and Ctrl-C (clean stop)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from tests.helpers import ONE_FEATURE_SET, ROOT, trial_states, write_spec


class _Run:
    """``hpo run`` in its own process, its log read line by line as it is written."""

    def __init__(self, spec: Path, db: Path, n: int) -> None:
        cmd = [sys.executable, "-m", "hpo", "run", "--study", str(spec), "--n-trials", str(n)]
        self.proc = subprocess.Popen(
            [*cmd, "--storage", str(db)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)  # the run ended

    def wait_mid_trial(self, after: int = 0, timeout: float = 120) -> bool:
        """Wait until this run has finished ``after`` trials and scored a fold of the next
        one: the worker stores a fold's scores, then logs "  fold K: ...", and five more
        folds follow. No polling of the database (a poller holding SQLite's read lock slows
        the writer); False if the run ends first."""
        end = time.time() + timeout
        finished = 0
        while (left := end - time.time()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                return False
            if re.match(r"trial \d+ (COMPLETE|PRUNED)", line):
                finished += 1
            elif line.startswith("  fold ") and finished >= after:
                return True
        return False

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 180) -> str:
        """Wait for the run to end; its whole output."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return "".join(self.lines)


def _kill_mid_trial(
    spec: Path, db: Path, n: int, sig: int = signal.SIGKILL, after: int = 0
) -> _Run:
    """Start a run, send ``sig`` once it has finished ``after`` trials and the next is under
    way, wait for the run to end."""
    run = _Run(spec, db, n)
    assert run.wait_mid_trial(after), run.finish()
    run.signal(sig)
    run.finish(timeout=60)
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


@pytest.mark.slow
def test_sigkill_mid_trial_is_failed_by_heartbeat_and_retried(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    db = tmp_path / "s.db"
    n = 4
    killed: int | None = None
    for _ in range(5):  # until a kill lands while a trial is running
        _kill_mid_trial(fast_heartbeat_spec, db, n)
        running = [t for t, s in trial_states(db) if s == "RUNNING"]
        if running:
            killed = running[0]
            break
    assert killed is not None, "never caught a trial mid-run"
    _move_to_another_host(db, killed)
    finished_before = {t: v for t, v in _values(db).items()}
    killed_params = _params(db)[killed]

    run = _Run(fast_heartbeat_spec, db, n)
    out = run.finish()
    assert run.proc.returncode == 0, out
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
    for t, v in finished_before.items():  # no finished trial lost or changed
        assert after[t] == v


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_queues_the_trial_again(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    db = tmp_path / "s.db"
    interrupted: int | None = None
    for _ in range(5):
        known = {t for t, _ in trial_states(db)} if db.exists() else set()
        run = _kill_mid_trial(fast_heartbeat_spec, db, 4, signal.SIGINT)
        out = "".join(run.lines)
        assert run.proc.returncode == 130, out
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
    assert _trials(db)[waiting[0]].user_attrs == {
        "retry_of": interrupted,
        "retry_reason": "interrupted (Ctrl-C)",
    }
    run = _Run(fast_heartbeat_spec, db, 4)
    out = run.finish()
    assert run.proc.returncode == 0, out
    assert dict(trial_states(db))[waiting[0]] in ("COMPLETE", "PRUNED")


@pytest.mark.slow
def test_repeated_sigkills_lose_no_finished_trial(
    tmp_path: Path, fast_heartbeat_spec: Path
) -> None:
    # Two kills, each once its run has finished a trial (for the second, the one the first
    # kill lost, retried) and started the next: the second kill lands on a study holding the
    # first run's finished trial, and the resumed run on both.
    db = tmp_path / "s.db"
    n = 6
    finished: dict[int, float] = {}
    for _ in range(2):
        _kill_mid_trial(fast_heartbeat_spec, db, n, after=1)
        values = _values(db)
        for t, v in finished.items():  # every trial finished before this kill is intact
            assert values[t] == v
        states = dict(trial_states(db))
        finished = {t: v for t, v in values.items() if states[t] in ("COMPLETE", "PRUNED")}
    assert len(finished) >= 2  # one a run, so every kill had finished trials to lose
    run = _Run(fast_heartbeat_spec, db, n)
    out = run.finish(timeout=300)
    assert run.proc.returncode == 0, out
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
    killed = None
    for _ in range(5):
        _kill_mid_trial(spec, db, 3)
        running = [t for t, s in trial_states(db) if s == "RUNNING"]
        if running:
            killed = running[0]
            break
    assert killed is not None
    start = time.time()
    run = _Run(spec, db, 3)
    out = run.finish(timeout=120)
    assert run.proc.returncode == 0, out
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
