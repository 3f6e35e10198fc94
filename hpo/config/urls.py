"""Storage URLs: parse, complete and redact them with SQLAlchemy's own URL type."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from hpo.errors import StorageError

_BACKENDS = ("sqlite", "postgresql", "mysql")


def parse_url(url: str) -> URL:
    """A SQLAlchemy URL; a bare ``*.db`` path means an SQLite file."""
    if "://" not in url:
        if url.endswith((".db", ".sqlite", ".sqlite3")):
            url = f"sqlite:///{url}"
        else:
            raise StorageError(
                f"--storage {url!r}: not a URL; use sqlite:///path/to/file.db or "
                "postgresql://user:pass@host/dbname"
            )
    try:
        u = make_url(url)
    except ArgumentError:
        raise StorageError(f"--storage {redact(url)!r}: not a valid database URL") from None
    if u.get_backend_name() not in _BACKENDS:
        raise StorageError(
            f"--storage: unknown scheme '{u.drivername}'; use sqlite:///path.db or postgresql://..."
        )
    return u


def normalize_url(url: str) -> str:
    """The URL to hand to SQLAlchemy: ``postgresql://`` gets the installed driver."""
    u = parse_url(url)
    if u.drivername == "postgresql":
        try:
            import psycopg  # noqa: F401

            u = u.set(drivername="postgresql+psycopg")
        except ImportError:
            try:
                import psycopg2  # noqa: F401
            except ImportError:
                raise StorageError(
                    "--storage postgresql://...: no PostgreSQL driver; pip install 'hpo[postgres]'"
                ) from None
    return u.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """The URL without its password, for logs, errors and provenance."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url if "@" not in url else "<unparsable URL>"


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for other backends and in-memory SQLite)."""
    try:
        u = make_url(url) if "://" in url else parse_url(url)
    except (ArgumentError, StorageError):
        return None
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)
