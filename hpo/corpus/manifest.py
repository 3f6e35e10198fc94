"""A prepared corpus on disk: ``clips/``, ``manifest.csv`` (one row a clip) and ``corpus.json``.

``corpus.json`` is written last, so its presence means the corpus is complete.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from hpo.errors import CorpusError
from hpo.util.io import write_json_atomic, write_text_atomic

MANIFEST = "manifest.csv"
CORPUS_JSON = "corpus.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Clip:
    """One prepared clip."""

    path: str  # relative to the corpus directory
    actor: int
    gender: str
    emotion: str
    emotion_id: int  # 1-8 as in the file name
    intensity: int
    statement: int
    repetition: int
    duration: float
    channels: int  # channels of the source file (downmixed to 1 here)
    source: str
    source_sha256: str
    fold: int


_INT_FIELDS = {"actor", "emotion_id", "intensity", "statement", "repetition", "channels", "fold"}


def manifest_text(clips: list[Clip]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[f.name for f in fields(Clip)], lineterminator="\n")
    w.writeheader()
    for c in clips:
        row = asdict(c)
        row["duration"] = f"{c.duration:.4f}"
        w.writerow(row)
    return buf.getvalue()


@dataclass(frozen=True)
class Corpus:
    """A prepared corpus as read from disk."""

    root: Path
    clips: list[Clip]
    meta: dict[str, Any]

    @property
    def manifest_hash(self) -> str:
        """Content hash of the manifest: what a study's results depend on."""
        return hashlib.sha256(manifest_text(self.clips).encode()).hexdigest()[:16]

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic"))

    @property
    def labels(self) -> tuple[str, ...]:
        """The corpus's label set, in class-index order: what every model predicts."""
        from hpo.corpus.ravdess import EMOTIONS

        return tuple(self.meta.get("labels") or EMOTIONS)

    @functools.cached_property
    def label_ids(self) -> np.ndarray:
        """Each clip's class index into ``labels``, in manifest order."""
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted({c.emotion for c in self.clips} - set(index))
        if unknown:
            raise CorpusError(
                f"{self.root / MANIFEST}: label {unknown[0]!r} is not in the corpus's label set "
                f"({', '.join(self.labels)}); run 'hpo data prepare' again"
            )
        return np.array([index[c.emotion] for c in self.clips], dtype=np.int64)

    @functools.cached_property
    def speakers(self) -> np.ndarray:
        """Each clip's speaker, in manifest order (what folds keep apart)."""
        return np.array([c.actor for c in self.clips])

    def clip_path(self, clip: Clip) -> Path:
        return self.root / clip.path


def write_corpus(root: Path, clips: list[Clip], meta: dict[str, Any]) -> None:
    write_text_atomic(root / MANIFEST, manifest_text(clips))
    write_json_atomic(root / CORPUS_JSON, {"format": FORMAT_VERSION, **meta})


def read_manifest_rows(path: Path) -> list[Clip]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            kw: dict[str, Any] = {}
            for fl in fields(Clip):
                v = row[fl.name]
                kw[fl.name] = (
                    int(v) if fl.name in _INT_FIELDS else float(v) if fl.name == "duration" else v
                )
            out.append(Clip(**kw))
        except (KeyError, ValueError, TypeError):
            raise CorpusError(
                f"{path}:{i}: malformed manifest row; run 'hpo data prepare' again"
            ) from None
    return out


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
    if meta.get("format") != FORMAT_VERSION:
        raise CorpusError(f"{meta_path}: unknown corpus format; run 'hpo data prepare' again")
    clips = read_manifest_rows(manifest_path)
    if not clips:
        raise CorpusError(f"{manifest_path}: the corpus has no clips")
    return Corpus(root=root, clips=clips, meta=meta)
