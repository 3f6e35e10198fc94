"""Opening study storage: SQLite by default, any SQLAlchemy URL (PostgreSQL for many machines).

Errors here never touch the database file: a path that is not a database, a locked file or
an unreachable server becomes one clear line.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import optuna

from hpo.config.study import RunSpec
from hpo.config.urls import normalize_url, redact, sqlite_path
from hpo.errors import StorageError
from hpo.study.locks import FileAskLock, lock_path
from hpo.study.retry import CleanRetry

LOCK_WAIT = 10.0  # seconds to wait for another program's lock on an SQLite file


def _check_sqlite(path: Path, create: bool) -> None:
    if not path.exists():
        if not create:
            raise StorageError(f"{path}: no such study database; run 'hpo run' first")
        # Optuna creates the file. No WAL: with several processes polling the file, WAL
        # gave "database disk image is malformed" to readers here; the rollback journal
        # with a lock timeout is slower under contention but never wrong.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(
                f"{path.parent}: cannot create the folder for the study database "
                f"({e.strerror}); give another --storage path"
            ) from None
        if not os.access(path.parent, os.W_OK):
            raise StorageError(f"{path.parent}: not writable; give another --storage path")
        return
    if path.is_dir():
        raise StorageError(f"{path}: is a directory, not an SQLite database")
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise StorageError(f"{path}: cannot read ({e.strerror})") from None
    if head and head != b"SQLite format 3\x00":
        raise StorageError(
            f"{path}: not an SQLite database (left untouched); give another --storage path"
        )
    last = ""
    for attempt in range(3):
        try:
            # A worker's write holds the lock for milliseconds; LOCK_WAIT seconds of waiting
            # means another program holds it.
            con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=LOCK_WAIT)
            try:
                con.execute("PRAGMA schema_version").fetchone()
                return
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            last = str(e)
            if "malformed" in last or "not a database" in last or "locked" in last:
                break
            time.sleep(0.2 * (attempt + 1))  # a transient I/O hiccup: try again
    if "locked" in last:
        raise StorageError(f"{path}: database is locked by another program; close it and retry")
    raise StorageError(f"{path}: corrupt or unreadable SQLite database ({last})")


def open_storage(
    url: str, run: RunSpec | None = None, create: bool = True
) -> optuna.storages.RDBStorage:
    """An RDBStorage for ``url``; with ``run`` given, heartbeats and stale-trial retries on.

    Args:
        url: SQLAlchemy URL or a bare ``.db`` path.
        run: crash-safety settings of the study being run (None for read-only commands).
        create: whether a missing SQLite file may be created.
    """
    url = normalize_url(url)
    path = sqlite_path(url)
    engine_kwargs: dict = {}
    if path is not None:
        _check_sqlite(path, create)
        # Several workers on one file: wait for the lock rather than fail at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    kw: dict = {}
    if run is not None:
        kw = {
            "heartbeat_interval": run.heartbeat_interval,
            "grace_period": run.grace_period,
            # Optuna's own retry copies the dead attempt's records into the retry.
            "heartbeat_stale_trial_callback": CleanRetry(run.max_retry),
        }
    for attempt in range(6):
        try:
            with _creating(path if create else None):
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kw)
        except StorageError:
            raise
        except Exception as e:  # SQLAlchemy/driver errors: connection refused, auth, locked...
            msg = str(e)
            # Workers started at once on a new PostgreSQL database race to create Optuna's
            # tables; the losers see "already exists" / a duplicate key and try again.
            if attempt < 5 and any(
                s in msg for s in ("already exists", "duplicate key", "UniqueViolation", "locked")
            ):
                time.sleep(0.5 * (attempt + 1))
                continue
            first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
            raise StorageError(f"cannot open storage {redact(url)}: {first}") from None
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _creating(path: Path | None):
    """Runs that start at once on a new SQLite file race to create Optuna's tables (one lost
    with "UNIQUE constraint failed: alembic_version"): take turns, under the lock the
    workers share for asking trials. Read-only commands (path None) take no lock."""
    if path is None:
        yield
        return
    lock = FileAskLock(lock_path(path))
    try:
        lock.acquire()
    except OSError as e:  # a read-only folder, say
        raise StorageError(f"{lock_path(path)}: cannot create lock file ({e.strerror})") from None
    try:
        yield
    finally:
        lock.close()


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(s.study_name for s in storage.get_all_studies())


def load_study(storage: optuna.storages.BaseStorage, name: str, **kw) -> optuna.Study:
    """Load an existing study; a mistyped name lists the studies that exist."""
    names = study_names(storage)
    if name not in names:
        have = ", ".join(names) if names else "none"
        raise StorageError(f"no study named '{name}' in this storage (studies: {have})")
    return optuna.load_study(study_name=name, storage=storage, **kw)


def pick_trial(
    study: optuna.Study,
    number: int | None,
    states: tuple[optuna.trial.TrialState, ...],
    why: str,
    prefix: str = "",
) -> optuna.trial.FrozenTrial:
    """Trial ``number`` of ``study`` (None: the best), for a command that reads one trial
    (report, compare, rerun); a trial that is missing, or in none of ``states`` (``why``
    says what those states give), is refused in one line starting with ``prefix``."""
    from hpo.errors import HpoError

    if number is None:
        return study.best_trial
    match = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not match:
        raise HpoError(
            f"{prefix}study '{study.study_name}' has no trial {number}; hpo status lists them"
        )
    if match[0].state not in states:
        raise HpoError(
            f"{prefix}trial {number} of study '{study.study_name}' is "
            f"{match[0].state.name.lower()}: {why}"
        )
    return match[0]
