"""Trials left RUNNING with no heartbeat at all.

Optuna's heartbeat check only fails trials whose last heartbeat is too old. A worker killed
between taking a trial (a new one, or a queued retry) and its first heartbeat leaves a
RUNNING trial with no heartbeat row, which Optuna would never fail: the study would wait for
it forever. Such a trial that started more than ``grace_period`` seconds ago is failed here
and queued again with the same parameters, like a stale one.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import optuna
from optuna.trial import TrialState

_SQL = (
    "SELECT t.trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
    "WHERE t.study_id = :sid AND t.state = 'RUNNING' AND h.trial_id IS NULL"
)


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
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        old = t._trial_id in ids and t.datetime_start is not None and t.datetime_start < cutoff
        # set_trial_state_values is False when another worker got there first.
        if old and study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
            failed.append(t.number)
            retry(study, study._storage.get_trial(t._trial_id))
    return failed
