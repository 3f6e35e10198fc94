"""Any corpus listed in a CSV file: ``--manifest FILE`` with columns path, speaker, label
and optionally gender, fold and group; paths relative to the CSV's folder (or absolute).

``fold``: a published split, used as it is (numbered 0..K-1 or 1..K; ``hpo.corpus.splits``
checks it); ``group``: speakers that folds keep together (a dyadic corpus's sessions). A
speaker has one gender, one fold and one group: a row may leave them empty and take its
speaker's from the other rows.

The CSV is the user's own, so a mistake in it (a missing column, an empty field, a file
that is not there, one speaker given two genders) stops the preparation with one line
naming the row; audio that cannot be used (truncated, silent, a duplicate) is skipped and
listed, as for every corpus. The label set is the labels found, in alphabetical order.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from hpo.corpus.formats._base import FEMALE, MALE, UNKNOWN, Classified, Entry, Format
from hpo.corpus.source import Source
from hpo.errors import CorpusError

REQUIRED = ("path", "speaker", "label")
_GENDERS = {
    **dict.fromkeys(("m", "male", "man"), MALE),
    **dict.fromkeys(("f", "female", "woman"), FEMALE),
    **dict.fromkeys(("", "u", "unknown", "na", "n/a", "?"), UNKNOWN),
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def read_table(
    path: Path, required: tuple[str, ...] = REQUIRED, needs: str = ""
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (lower-cased) and ``(line number, row)`` pairs; ``,``, ``;`` or tab separated.
    ``required``: the columns it must have; ``needs``: what to say when one is missing."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    first = text.split("\n", 1)[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = [h.strip().lower() for h in next(reader, [])]
    for col in required:
        if col not in header:
            raise CorpusError(
                f"{path}: no '{col}' column (has: {', '.join(h for h in header if h) or 'none'});"
                f" {needs or 'a corpus CSV needs path, speaker, label and optionally gender'}"
            )
    rows = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines, e.g. at the end
        rows.append((reader.line_num, dict(zip(header, (c.strip() for c in row), strict=False))))
    if not rows:
        raise CorpusError(f"{path}: has a header but no rows")
    return header, rows


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("_") or "_"


def clip_name(member: str) -> str:
    """A file name in clips/ for a listed path: its folders joined, unsafe characters out."""
    parts = [p for p in PurePosixPath(member).with_suffix("").parts if p not in ("/", "..", ".")]
    return "__".join(_safe(p) for p in parts) + ".wav"


class PlainCsv(Format):
    name = "csv"
    title = "any corpus listed in a CSV file"
    labels = ()  # the CSV's own, see label_set

    def label_set(self, present: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(present)))

    def entries(self, source: Source, members: list[str]) -> Classified:
        path = Path(self.options["manifest"])  # type: ignore[arg-type]
        header, rows = read_table(path)
        # Per speaker: its gender, fold and group, with the line that gave each first.
        seen: dict[str, dict[str, tuple[str, int]]] = {c: {} for c in ("gender", "fold", "group")}
        first_line: dict[str, int] = {}
        by_out: dict[str, str] = {}
        entries, rejected = [], []
        for line, row in rows:
            e = self._entry(path, source, line, row, seen)
            if e.member in first_line:
                why = f"listed again (first on line {first_line[e.member]})"
                rejected.append({"file": e.member, "reason": why})
            elif e.out in by_out:
                why = f"same clip name as {by_out[e.out]} (the paths differ only in extension)"
                rejected.append({"file": e.member, "reason": why})
            else:
                first_line[e.member], by_out[e.out] = line, e.member
                entries.append(e)
        # A row without a gender (fold, group) takes its speaker's from the other rows.
        return Classified([_completed(e, header, seen, path) for e in entries], rejected)

    def _entry(
        self,
        csv_path: Path,
        source: Source,
        line: int,
        row: dict[str, str],
        seen: dict[str, dict[str, tuple[str, int]]],
    ) -> Entry:
        where = f"{csv_path}:{line}"
        for col in REQUIRED:
            if not row.get(col):
                raise CorpusError(f"{where}: empty {col}; every row needs path, speaker and label")
        member = PurePosixPath(row["path"].replace("\\", "/")).as_posix()
        file = source.path / member
        if not file.exists():
            raise CorpusError(
                f"{where}: {row['path']} does not exist (paths are relative to {source.path})"
            )
        if not file.is_file():
            raise CorpusError(f"{where}: {row['path']} is not a file")
        speaker, raw_gender = row["speaker"], row.get("gender") or ""
        gender = _GENDERS.get(raw_gender.strip().lower())
        if gender is None:
            # A typo would otherwise be a gender group of its own, which fold balancing uses.
            raise CorpusError(
                f"{where}: gender {raw_gender!r} is not one of m, f, male, female, man, woman "
                "(or empty, u, unknown, na, n/a, ? when not known)"
            )
        fold = row.get("fold") or ""
        if fold and not (fold.isascii() and fold.isdigit()):
            raise CorpusError(
                f"{where}: fold {fold!r} is not a whole number; number the folds 0..K-1 or 1..K"
            )
        for col, value in (("gender", gender), ("fold", fold), ("group", row.get("group") or "")):
            _one_per_speaker(where, speaker, col, value, seen[col], line)
        return Entry(
            member=member,
            out=f"clips/{_safe(speaker)}/{clip_name(member)}",
            speaker=speaker,
            gender=gender,
            label=row["label"],
        )


def _one_per_speaker(
    where: str, speaker: str, col: str, value: str, seen: dict[str, tuple[str, int]], line: int
) -> None:
    """Record the speaker's gender (fold, group); one that differs from an earlier row's is
    refused (an empty one says nothing)."""
    known, known_line = seen.get(speaker, ("", line))
    if not known:
        if value:
            seen[speaker] = (value, line)
        return
    if value and value != known:
        if col == "fold":
            why = "a published split keeps each speaker's clips in one fold"
        elif col == "group":
            why = "one group per speaker"
        else:
            why = "one gender per speaker"
        what = "" if col == "gender" else f"{col} "
        raise CorpusError(
            f"{where}: speaker {speaker} is {what}'{value}' here but '{known}' "
            f"on line {known_line}; {why}"
        )


def _completed(
    e: Entry, header: list[str], seen: dict[str, dict[str, tuple[str, int]]], path: Path
) -> Entry:
    """The entry with its speaker's gender, fold and group from whichever row gave them."""
    known = {col: seen[col].get(e.speaker, ("", 0))[0] for col in seen}
    fold = None
    if "fold" in header:
        if not known["fold"]:
            raise CorpusError(
                f"{path}: speaker {e.speaker} has no fold on any row; with a fold column, "
                "every speaker needs one (it is the split, used as it is)"
            )
        fold = int(known["fold"])
    extra = (("group", known["group"]),) if "group" in header else ()
    return dataclasses.replace(e, gender=known["gender"], fold=fold, extra=extra)
