"""Published splits: folds read from a table instead of cut by a rule (``"file"``).

Two sources, checked alike before any clip is decoded: ``hpo data prepare --folds-from FILE``
(a CSV with ``speaker,fold``, or ``path,fold`` for clip → fold), or a CSV corpus's own
``fold`` column. Speaker independence is the point, so every clip of a speaker must be in one
fold; every speaker of the corpus needs a fold, the table names no speaker (or clip) the
corpus lacks, and no fold between the first and the last is empty. Folds numbered 1..K are
renumbered 0..K-1 (the manifest's numbering); otherwise the table's numbers are kept, so
fold 3 of the paper is fold 3 (or 2) of the study. A clip table matches a row to a clip by
its path in the source, or by the end of the path (a table written with absolute paths on
another machine); clips it leaves out take their speaker's fold, and rows naming a file the
corpus rejected by its name are skipped.

The table's path and SHA-256 are recorded in ``corpus.json`` (``folds_from``); the manifest's
``fold`` column is what studies read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hpo.corpus.folds import speaker_key
from hpo.corpus.formats._base import Entry
from hpo.corpus.formats.plain_csv import read_table
from hpo.errors import CorpusError

_NEEDS = "a split needs a fold column and a speaker (or path) column: speaker,fold or path,fold"


@dataclass(frozen=True)
class GivenFolds:
    """A published split: each speaker's fold (``0..K-1``) and where it came from."""

    fold_of: dict[str, int]
    source: dict[str, Any]  # corpus.json's "folds_from": file, sha256, by


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _speaker_index(speakers: set[str]) -> dict[str, str]:
    """How the table may name a speaker: as the corpus does, or as a number ("01" for 1)."""
    index: dict[str, str] = {}
    for s in sorted(speakers, key=speaker_key):
        if s.isascii() and s.isdigit():
            index.setdefault(str(int(s)), s)
    return {**index, **{s: s for s in speakers}}


def _as_speaker(name: str, index: Mapping[str, str]) -> str | None:
    if name in index:
        return index[name]
    return index.get(str(int(name))) if name.isascii() and name.isdigit() else None


def _match_clip(path: str, by_name: Mapping[str, list[Entry]]) -> list[Entry]:
    """The corpus's clips a table's path names: the same path in the source, or one that
    ends with the other (a table written with absolute paths, or paths inside a zip)."""
    p = PurePosixPath(path.replace("\\", "/")).as_posix().removeprefix("./")
    return [
        e
        for e in by_name.get(PurePosixPath(p).name, [])
        if e.member == p or p.endswith("/" + e.member) or e.member.endswith("/" + p)
    ]


def _fold_number(where: str, raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise CorpusError(
            f"{where}: fold {raw!r} is not a whole number; number the folds 0..K-1 or 1..K"
        )
    return int(raw)


def _set_fold(fold_of: dict[str, tuple[int, str]], speaker: str, fold: int, where: str) -> None:
    known = fold_of.setdefault(speaker, (fold, where))
    if known[0] != fold:
        raise CorpusError(
            f"{where}: speaker {speaker} is in fold {fold} here but in fold {known[0]} at "
            f"{known[1]}; a speaker-independent split keeps each speaker's clips in one fold"
        )


def from_file(path: Path, entries: list[Entry], rejected: list[dict[str, str]]) -> GivenFolds:
    """The split in ``path`` (``speaker,fold`` or ``path,fold``) over the corpus's
    ``entries``; rows naming a file the corpus rejected by name are skipped."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such file; --folds-from takes a CSV (speaker,fold)")
    header, rows = read_table(path, ("fold",), _NEEDS)
    by = "speaker" if "speaker" in header else "path" if "path" in header else None
    if by is None:
        raise CorpusError(
            f"{path}: no 'speaker' or 'path' column (has: {', '.join(header)}); {_NEEDS}"
        )
    speakers = _speaker_index({e.speaker for e in entries})
    by_name: dict[str, list[Entry]] = {}
    for e in entries:
        by_name.setdefault(PurePosixPath(e.member).name, []).append(e)
    skipped = {PurePosixPath(r["file"]).name for r in rejected}
    fold_of: dict[str, tuple[int, str]] = {}
    for line, row in rows:
        where, name = f"{path}:{line}", row.get(by) or ""
        fold = _fold_number(where, row.get("fold") or "")
        if by == "speaker":
            speaker = _as_speaker(name, speakers)
            if speaker is None:
                raise CorpusError(f"{where}: speaker {name!r} is not in the corpus")
            _set_fold(fold_of, speaker, fold, where)
            continue
        found = _match_clip(name, by_name)
        if len(found) > 1:
            raise CorpusError(f"{where}: {name!r} matches {len(found)} clips; give its full path")
        if not found and PurePosixPath(name).name not in skipped:
            raise CorpusError(f"{where}: {name!r} is not a clip of the corpus")
        if found:
            _set_fold(fold_of, found[0].speaker, fold, where)
    missing = sorted(set(speakers.values()) - set(fold_of), key=speaker_key)
    if missing:
        of = "has no fold" if by == "speaker" else "has no clip listed"
        raise CorpusError(
            f"{path}: speaker {missing[0]} of the corpus {of} (and {len(missing) - 1} more); "
            "a split must give every speaker a fold"
        )
    raw = {s: f for s, (f, _) in fold_of.items()}
    source = {"file": str(path.resolve()), "sha256": _sha256(path), "by": by}
    return GivenFolds(normalised(raw, str(path)), source)


def from_column(csv_path: Path, entries: list[Entry]) -> GivenFolds | None:
    """The split in a CSV corpus's ``fold`` column (None without one); the adapter has
    already given every entry its speaker's fold."""
    raw = {e.speaker: e.fold for e in entries if e.fold is not None}
    if not raw:
        return None
    source = {"file": str(csv_path.resolve()), "sha256": _sha256(csv_path), "by": "fold column"}
    return GivenFolds(normalised(raw, str(csv_path)), source)


def normalised(raw: Mapping[str, int], where: str) -> dict[str, int]:
    """Folds ``0..K-1`` from a table's ``0..K-1`` or ``1..K``; one line for a gap (an
    empty fold) or a single fold."""
    ids = set(raw.values())
    first = 0 if 0 in ids else 1
    empty = [f for f in range(first, max(ids) + 1) if f not in ids]
    if empty:
        raise CorpusError(
            f"{where}: fold {empty[0]} has no speaker (the folds run {first}..{max(ids)}); "
            "number them 0..K-1 or 1..K, none empty"
        )
    if len(ids) < 2:
        raise CorpusError(f"{where}: every speaker is in one fold; a split needs 2 or more")
    return {s: f - first for s, f in raw.items()}


def check_groups(fold_of: Mapping[str, int], groups: Mapping[str, str], where: str) -> None:
    """Refuse a split that puts one group's speakers (a session) in different folds."""
    fold_of_group: dict[str, tuple[int, str]] = {}
    for speaker in sorted(fold_of, key=speaker_key):
        g = groups.get(speaker) or ""
        if not g:
            continue
        f, other = fold_of_group.setdefault(g, (fold_of[speaker], speaker))
        if f != fold_of[speaker]:
            raise CorpusError(
                f"{where}: group {g} has speaker {other} in fold {f} but speaker {speaker} in "
                f"fold {fold_of[speaker]} (as numbered 0..K-1); a group's speakers share a fold"
            )


def check_kept(given: GivenFolds, speakers: set[str], where: str) -> dict[str, int]:
    """The split over the speakers whose clips were usable; one line when a whole fold lost
    its clips (unusable audio), which would leave the published split incomplete."""
    fold_of = {s: f for s, f in given.fold_of.items() if s in speakers}
    lost = sorted(set(given.fold_of.values()) - set(fold_of.values()))
    if lost:
        raise CorpusError(
            f"{where}: fold {lost[0]} (as numbered 0..K-1) has no usable clip left (its audio "
            "was rejected; see the rejected inputs of a prepare without the split)"
        )
    return fold_of
