"""Errors the CLI turns into one-line messages (no traceback, non-zero exit)."""


def one_line(e: BaseException) -> str:
    """``Type: first line of the message`` (the type alone when there is no message): how an
    unexpected error is told in one line, by the CLI and in a failed trial's reason."""
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


class HpoError(Exception):
    """A problem the user can fix; the message names the file or field and what to do."""

    exit_code = 2


class CorpusError(HpoError):
    """A corpus that cannot be prepared or read."""


class SpecError(HpoError):
    """A study file that does not validate."""


class StorageError(HpoError):
    """A study storage that cannot be opened or does not hold what was asked for."""
