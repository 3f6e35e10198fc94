"""Errors the CLI turns into one-line messages (no traceback, non-zero exit)."""


class HpoError(Exception):
    """A problem the user can fix; the message names the file or field and what to do."""

    exit_code = 2


class CorpusError(HpoError):
    """A corpus that cannot be prepared or read."""


class SpecError(HpoError):
    """A study file that does not validate."""


class StorageError(HpoError):
    """A study storage that cannot be opened or does not hold what was asked for."""
