"""Trials left RUNNING by workers that died.

Two cases Optuna's heartbeat does not cover well:

- A worker killed between taking a trial (a new one, or a queued retry) and its first
  heartbeat leaves a RUNNING trial with no heartbeat row, which Optuna would never fail.
  Such a trial that started more than ``grace_period`` seconds ago is failed here and
  queued again with the same parameters, like a stale one.
- A worker on *this* machine whose process is gone cannot be running its trial: there is
  no need to wait ``grace_period`` (600 s for w2v) to retry it. Every trial records its
  worker as ``host:boot:pidns:pid:start``: containers may share the host's name but not its
  pid namespace, so only a worker of this boot (the kernel's boot id) and of this pid
  namespace is judged by its pid; the start time tells a reused pid from the original.
  Other workers (other machines, containers, and ids of older hpo versions without the
  namespace) keep the heartbeat rule.

A retry (hpo.study.retry) starts with no ``worker`` of its own until the worker that takes
it records its id, so the sweep never judges a retry by the dead attempt's worker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from hpo.study.retry import queue_retry

# Optuna has no public call for RUNNING trials without a heartbeat row (its own
# fail_stale_trials skips them), so this reads its tables: names stable since heartbeats came
# in v2.9; should they change, the check turns itself off rather than break the run.
_NO_HEARTBEAT_SQL = (
    "SELECT t.number FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
    "WHERE t.study_id = :sid AND t.state = 'RUNNING' AND h.trial_id IS NULL"
)


def _start_time(pid: int) -> str | None:
    """The process's start time (seconds since the epoch, to the clock tick), None where the
    process is gone."""
    import psutil

    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.Error:
        return None


def _boot_id() -> str:
    """This boot of this machine (shared by its containers), '-' where unknown. Read from
    /proc: psutil has the boot's time, not the kernel's boot id."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()[:8] or "-"
    except OSError:
        return "-"


def _pid_namespace() -> str:
    """The inode of this process's pid namespace (Linux), '-' where unknown. Read from
    /proc: psutil does not report namespaces."""
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]") or "-"
    except OSError:
        return "-"


def worker_id(pid: int | None = None) -> str:
    """``host:boot:pidns:pid:start`` of this process (or of ``pid`` in this namespace),
    recorded on every trial it runs."""
    pid = os.getpid() if pid is None else pid
    here = f"{socket.gethostname()}:{_boot_id()}:{_pid_namespace()}"
    return f"{here}:{pid}:{_start_time(pid) or '-'}"


def _dead_here(worker: str) -> bool:
    """Whether ``worker`` ran in this pid namespace of this boot and its process is gone (or
    the pid was reused)."""
    parts = worker.rsplit(":", 4)
    if len(parts) != 5:  # none recorded, or an older hpo's host:pid:start: the heartbeat rule
        return False
    host, boot, namespace, pid_s, start = parts
    if (host, boot, namespace) != (socket.gethostname(), _boot_id(), _pid_namespace()):
        return False
    if not pid_s.isdigit():
        return False
    now = _start_time(int(pid_s))
    # Gone, or the pid now belongs to a process started at another time (reused).
    return now is None or (start not in ("", "-") and now != start)


def fail_and_retry(
    study: optuna.Study,
    storage: RDBStorage,
    numbers: list[int],
    max_retry: int,
    reason: str | None = None,
) -> list[int]:
    """Fail the RUNNING trials ``numbers`` (with ``fail_reason``, if given) and queue each
    again with the same parameters (:func:`~hpo.study.retry.queue_retry`); returns the ones
    failed here (another worker may have got to some first)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for number in numbers:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        try:
            if reason is not None:
                storage.set_trial_user_attr(trial_id, "fail_reason", reason)
            # False when another worker's write got there first.
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another worker already failed it (and retried it)
            continue
        failed.append(number)
        queue_retry(study, storage.get_trial(trial_id), max_retry, reason or "its worker stopped")
    return failed


def fail_dead_local(study: optuna.Study, storage: RDBStorage, max_retry: int) -> list[int]:
    """Fail and re-queue RUNNING trials whose worker process on this host has died."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    failed = []
    for t in running:
        worker = str(t.user_attrs.get("worker", ""))
        if _dead_here(worker):
            failed += fail_and_retry(study, storage, [t.number], max_retry, f"worker {worker} died")
    return failed


def _numbers_without_heartbeat(study: optuna.Study, storage: RDBStorage) -> set[int]:
    import sqlalchemy

    study_id = storage.get_study_id_from_name(study.study_name)
    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError), storage.engine.connect() as con:
        return {r[0] for r in con.execute(sqlalchemy.text(_NO_HEARTBEAT_SQL), {"sid": study_id})}
    return set()


def fail_orphans(
    study: optuna.Study, storage: RDBStorage, grace_period: int, max_retry: int
) -> list[int]:
    """Fail and re-queue heartbeat-less RUNNING trials older than ``grace_period``."""
    numbers = _numbers_without_heartbeat(study, storage)
    if not numbers:
        return []
    cutoff = dt.datetime.now() - dt.timedelta(seconds=grace_period)
    old = [
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.number in numbers and t.datetime_start is not None and t.datetime_start < cutoff
    ]
    reason = f"no heartbeat {grace_period} s after it started (its worker died as it began)"
    return fail_and_retry(study, storage, old, max_retry, reason)
