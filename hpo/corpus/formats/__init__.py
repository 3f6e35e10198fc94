"""The corpus adapters, by name: one module per corpus behind one contract (``_base.py``).

``hpo data prepare --format NAME`` picks one; without it the format is told from the file
names, when exactly one adapter recognises them.
"""

from __future__ import annotations

from pathlib import Path

from hpo.corpus.formats._base import Format
from hpo.corpus.formats.crema_d import CremaD
from hpo.corpus.formats.emodb import EmoDB
from hpo.corpus.formats.plain_csv import PlainCsv
from hpo.corpus.formats.ravdess import Ravdess
from hpo.corpus.formats.savee import Savee
from hpo.corpus.formats.tess import Tess
from hpo.errors import CorpusError

FORMATS: dict[str, type[Format]] = {
    f.name: f for f in (Ravdess, EmoDB, CremaD, Tess, Savee, PlainCsv)
}
# Formats told apart by their file names (a CSV names its own files).
NAMED = tuple(n for n in FORMATS if n != "csv")


def format_names() -> tuple[str, ...]:
    return tuple(FORMATS)


def get_format(name: str, **options: Path | None) -> Format:
    """The adapter called ``name``; an unknown name is one line listing the known ones."""
    if name not in FORMATS:
        raise CorpusError(f"--format {name}: unknown corpus format (known: {', '.join(FORMATS)})")
    return FORMATS[name](**options)


def detect(members: list[str], where: str) -> str:
    """The one named format whose file-name convention the members follow."""
    adapters = {n: FORMATS[n]() for n in NAMED}
    counts = {n: sum(1 for m in members if f.recognises(m)) for n, f in adapters.items()}
    hits = {n: c for n, c in counts.items() if c}
    if len(hits) == 1:
        return next(iter(hits))
    if not hits:
        raise CorpusError(
            f"{where}: no file name follows a known corpus's convention; give --format "
            f"({', '.join(NAMED)}) or list the files in a CSV (--manifest FILE)"
        )
    found = ", ".join(f"{n} ({c} files)" for n, c in hits.items())
    raise CorpusError(f"{where}: file names of several corpora ({found}); give --format NAME")
