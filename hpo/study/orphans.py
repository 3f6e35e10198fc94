"""Trials left RUNNING by workers that died.

Two cases Optuna's heartbeat does not cover well:

- A worker killed between taking a trial (a new one, or a queued retry) and its first
  heartbeat leaves a RUNNING trial with no heartbeat row, which Optuna would never fail.
  Such a trial that started more than ``grace_period`` seconds ago is failed here and
  queued again with the same parameters, like a stale one.
- A worker on *this* machine whose process is gone cannot be running its trial: there is
  no need to wait ``grace_period`` (600 s for w2v) to retry it. Every trial records its
  worker as ``host:pid:start``; the start time tells a reused pid from the original.
  Trials of other machines keep the heartbeat rule.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket

import optuna
from optuna.trial import TrialState

_SQL = (
    "SELECT t.trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
    "WHERE t.study_id = :sid AND t.state = 'RUNNING' AND h.trial_id IS NULL"
)


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            # The command name (field 2) may hold spaces; fields after its ')' are fixed.
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_id(pid: int | None = None) -> str:
    """``host:pid:start`` of this process, recorded on every trial it runs."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '-'}"


def _dead_here(worker: str) -> bool:
    """Whether ``worker`` ran on this host and its process is gone (or the pid was reused)."""
    host, _, rest = worker.partition(":")
    pid_s, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_s.isdigit():
        return False
    pid = int(pid_s)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return start not in ("", "-") and _start_ticks(pid) not in (None, start)


def _fail_and_retry(study: optuna.Study, trials: list, max_retry: int) -> list[int]:
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    failed = []
    for t in trials:
        # set_trial_state_values is False when another worker got there first.
        if study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
            failed.append(t.number)
            retry(study, study._storage.get_trial(t._trial_id))
    return failed


def fail_dead_local(study: optuna.Study, max_retry: int) -> list[int]:
    """Fail and re-queue RUNNING trials whose worker process on this host has died."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    dead = [t for t in running if _dead_here(str(t.user_attrs.get("worker", "")))]
    for t in dead:
        study._storage.set_trial_user_attr(
            t._trial_id, "fail_reason", f"worker {t.user_attrs['worker']} died"
        )
    return _fail_and_retry(study, dead, max_retry)


def _ids_without_heartbeat(study: optuna.Study) -> set[int]:
    import sqlalchemy

    storage = study._storage
    engine = getattr(storage, "engine", None) or getattr(
        getattr(storage, "_backend", None), "engine", None
    )
    if engine is None:
        return set()
    study_id = storage.get_study_id_from_name(study.study_name)
    # Optuna's table names (stable since heartbeats were added in v2.9); if they ever
    # change, this check turns itself off rather than break the run.
    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError), engine.connect() as con:
        return {r[0] for r in con.execute(sqlalchemy.text(_SQL), {"sid": study_id})}
    return set()


def fail_orphans(study: optuna.Study, grace_period: int, max_retry: int) -> list[int]:
    """Fail and re-queue heartbeat-less RUNNING trials older than ``grace_period``."""
    ids = _ids_without_heartbeat(study)
    if not ids:
        return []
    cutoff = dt.datetime.now() - dt.timedelta(seconds=grace_period)
    old = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t._trial_id in ids and t.datetime_start is not None and t.datetime_start < cutoff
    ]
    return _fail_and_retry(study, old, max_retry)
