"""A lock around "is there room for another trial? then create it", shared by all workers.

Without it, two workers that both see ``n_trials - 1`` trials finished or under way would
both start one, and the study would end with a surplus trial. SQLite workers share one
machine, so a file lock beside the database serves (``filelock``: flock on Unix, msvcrt on
Windows, and the kernel drops it when a worker is killed); PostgreSQL workers on many
machines use a PostgreSQL advisory lock. Other storages fall back to the runner's surplus check.
"""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import filelock
import optuna

from hpo.config.urls import normalize_url, sqlite_path


class AskLock:
    """Acquire before counting and asking; release once the trial exists (idempotent)."""

    def acquire(self) -> None:  # pragma: no cover - the no-op default
        pass

    def release(self) -> None:  # pragma: no cover
        pass

    def close(self) -> None:
        self.release()


def lock_path(db: Path) -> Path:
    """The lock file beside an SQLite database."""
    return db.with_name(db.name + ".hpo-lock")


class FileAskLock(AskLock):
    """The lock file beside an SQLite database, shared by every process on this machine."""

    def __init__(self, path: Path) -> None:
        self._lock = filelock.FileLock(path)

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        # force: one release frees it, however often it was taken (filelock counts), and
        # releasing a lock not held does nothing, as AskLock promises.
        self._lock.release(force=True)


class PostgresAdvisoryLock(AskLock):
    def __init__(self, storage: optuna.storages.RDBStorage, study: str) -> None:
        import sqlalchemy

        self._text = sqlalchemy.text
        self._conn = storage.engine.connect()
        self._key = zlib.crc32(f"hpo-ask:{study}".encode())
        self._held = False

    def acquire(self) -> None:
        self._conn.execute(self._text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
        self._conn.commit()
        self._held = True

    def release(self) -> None:
        if self._held:
            self._conn.execute(self._text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._conn.commit()
            self._held = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.release()
        self._conn.close()


def ask_lock(storage: optuna.storages.RDBStorage, url: str, study: str) -> AskLock:
    """The lock every worker of ``study`` on ``url`` shares."""
    url = normalize_url(url)
    path = sqlite_path(url)
    if path is not None:
        return FileAskLock(lock_path(path))
    if url.startswith("postgresql"):
        return PostgresAdvisoryLock(storage, study)
    return AskLock()
