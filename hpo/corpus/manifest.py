"""A prepared corpus on disk: ``clips/``, ``manifest.csv`` (one row a clip) and ``corpus.json``.

The contract every study, kind and report reads, whatever the corpus:

- ``manifest.csv``: ``path`` (16 kHz mono clip, relative to the corpus), ``speaker``,
  ``gender`` (``male``, ``female`` or empty when unknown), ``label``, ``fold``,
  ``duration`` (s), the source's ``channels`` and ``sample_rate``, ``source`` (the file in
  the release) and ``source_sha256``; then the adapter's own columns (RAVDESS:
  ``emotion_id``, ``intensity``, ``statement``, ``repetition``; a CSV corpus: ``group``
  when its CSV has one).
- ``corpus.json``: ``format``, ``name`` (the adapter, or the CSV corpus's name), ``labels``
  (the label set in class order), ``folds`` (``K``, ``"loso"``, or ``"file"``: a published
  split, whose table and its hash ``folds_from`` records) and ``n_folds``, ``fold_unit``
  (``speaker`` or ``group``), ``speakers`` (id -> gender), the rejected inputs and where it
  came from.

``corpus.json`` is written last, so its presence means the corpus is complete. A corpus of
another ``format`` (one an earlier hpo prepared) is refused with the command that prepares
it again.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from hpo.errors import CorpusError
from hpo.util.io import write_json_atomic, write_text_atomic

MANIFEST = "manifest.csv"
CORPUS_JSON = "corpus.json"
FORMAT_VERSION = 2


def typed_id(value: str) -> int | str:
    """A speaker id or column value as a number when it is written as one ("7", not "07")."""
    return int(value) if value.isascii() and value.isdigit() and str(int(value)) == value else value


def typed_column(values: list[str]) -> list[int] | list[str]:
    """A column as numbers when every value is one, else as strings (one type a column)."""
    typed = [typed_id(v) for v in values]
    return typed if all(isinstance(v, int) for v in typed) else list(values)  # type: ignore[return-value]


@dataclass(frozen=True)
class Clip:
    """One prepared clip: the manifest's generic columns plus the adapter's own (``extra``)."""

    path: str  # relative to the corpus directory
    speaker: str
    gender: str  # "male", "female" or "" (unknown)
    label: str
    fold: int
    duration: float
    channels: int  # channels of the source file (downmixed to 1 here)
    sample_rate: int  # of the source file
    source: str
    source_sha256: str
    extra: tuple[tuple[str, str], ...] = ()

    def row(self) -> dict[str, str]:
        """The manifest row: generic columns, then the adapter's."""
        row = {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name != "extra"}
        row["duration"] = f"{self.duration:.4f}"
        return {**row, **dict(self.extra)}


COLUMNS = tuple(f.name for f in fields(Clip) if f.name != "extra")
_INTS = {"fold", "channels", "sample_rate"}


def manifest_text(clips: list[Clip]) -> str:
    extra = list(dict.fromkeys(k for c in clips for k, _ in c.extra))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*COLUMNS, *extra], lineterminator="\n")
    w.writeheader()
    for c in clips:
        w.writerow(c.row())
    return buf.getvalue()


def _clip_of(row: dict[str, str | None], extra: list[str]) -> Clip:
    if any(row.get(k) is None for k in (*COLUMNS, *extra)):
        raise ValueError("missing fields")
    kw: dict[str, Any] = {k: row[k] for k in COLUMNS}
    kw.update({k: int(kw[k]) for k in _INTS})
    kw["duration"] = float(kw["duration"])
    return Clip(**kw, extra=tuple((k, str(row[k])) for k in extra))


def parse_manifest(text: str, path: Path) -> list[Clip]:
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    extra = [h for h in header if h not in COLUMNS]
    out = []
    for i, row in enumerate(reader, start=2):
        try:
            out.append(_clip_of(row, extra))
        except (KeyError, ValueError, TypeError):
            raise CorpusError(
                f"{path}:{i}: malformed manifest row; run 'hpo data prepare' again"
            ) from None
    return out


def read_manifest_rows(path: Path) -> list[Clip]:
    return parse_manifest(path.read_text(encoding="utf-8"), path)


@dataclass(frozen=True)
class Corpus:
    """A prepared corpus as read from disk."""

    root: Path
    clips: list[Clip]
    meta: dict[str, Any]
    text_hash: str | None = None  # of manifest.csv as read (None: computed from the clips)

    @property
    def manifest_hash(self) -> str:
        """Content hash of the manifest: what a study's results depend on."""
        return self.text_hash or hashlib.sha256(manifest_text(self.clips).encode()).hexdigest()[:16]

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic"))

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def labels(self) -> tuple[str, ...]:
        """The corpus's label set, in class-index order: what every model predicts."""
        return tuple(self.meta["labels"])

    @property
    def fold_rule(self) -> int | str:
        """``K``, ``"loso"`` or ``"file"``: how ``hpo data prepare`` cut the folds."""
        rule = self.meta.get("folds", self.meta.get("n_folds"))
        return rule if rule is not None else len({c.fold for c in self.clips})

    @functools.cached_property
    def label_ids(self) -> np.ndarray:
        """Each clip's class index into ``labels``, in manifest order."""
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted({c.label for c in self.clips} - set(index))
        if unknown:
            raise CorpusError(
                f"{self.root / MANIFEST}: label {unknown[0]!r} is not in the corpus's label set "
                f"({', '.join(self.labels)}); run 'hpo data prepare' again"
            )
        return np.array([index[c.label] for c in self.clips], dtype=np.int64)

    @functools.cached_property
    def speakers(self) -> np.ndarray:
        """Each clip's speaker, in manifest order (what folds keep apart): numbers when every
        id is one (RAVDESS's actors, CREMA-D's), else strings (``DC``, ``03``)."""
        return np.array(typed_column([c.speaker for c in self.clips]))

    @functools.cached_property
    def speaker_groups(self) -> dict[Any, str] | None:
        """``{speaker: group}`` from the manifest's ``group`` column (``""``: in no group),
        with the speakers as in ``speakers``; None when the corpus has no groups."""
        if not any(k == "group" for k, _ in self.clips[0].extra):
            return None
        return {
            s.item(): dict(c.extra)["group"] for s, c in zip(self.speakers, self.clips, strict=True)
        }

    @functools.cached_property
    def speaker_genders(self) -> dict[Any, str]:
        """``{speaker: gender}`` with the speakers as in ``speakers``."""
        return {s.item(): c.gender for s, c in zip(self.speakers, self.clips, strict=True)}

    def clip_path(self, clip: Clip) -> Path:
        return self.root / clip.path


def write_corpus(root: Path, clips: list[Clip], meta: dict[str, Any]) -> None:
    write_text_atomic(root / MANIFEST, manifest_text(clips))
    write_json_atomic(root / CORPUS_JSON, {"format": FORMAT_VERSION, **meta})


def load_corpus(root: str | Path) -> Corpus:
    """Read a prepared corpus; a clear error when it is missing or incomplete."""
    root = Path(root)
    meta_path, manifest_path = root / CORPUS_JSON, root / MANIFEST
    if not root.is_dir():
        raise CorpusError(
            f"{root}: no such corpus directory; run 'hpo data prepare SRC --out {root}' first"
        )
    if not meta_path.is_file() or not manifest_path.is_file():
        raise CorpusError(
            f"{root}: not a prepared corpus (no {CORPUS_JSON} or {MANIFEST}); "
            f"run 'hpo data prepare SRC --out {root}'"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorpusError(f"{meta_path}: not valid JSON; run 'hpo data prepare' again") from None
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != FORMAT_VERSION or not meta.get("name") or not meta.get("labels"):
        # A 0.x package reads only the corpora it writes: no reader for older layouts.
        what = (
            f"corpus format {found!r}, not {FORMAT_VERSION}"
            if found != FORMAT_VERSION
            else ("no corpus name or label set")
        )
        raise CorpusError(
            f"{meta_path}: {what}; re-prepare with 'hpo data prepare SRC --out {root}'"
        )
    data = manifest_path.read_bytes()
    try:
        clips = parse_manifest(data.decode("utf-8"), manifest_path)
    except UnicodeDecodeError:
        raise CorpusError(f"{manifest_path}: not UTF-8; run 'hpo data prepare' again") from None
    if not clips:
        raise CorpusError(f"{manifest_path}: the corpus has no clips")
    return Corpus(root, clips, meta, hashlib.sha256(data).hexdigest()[:16])
