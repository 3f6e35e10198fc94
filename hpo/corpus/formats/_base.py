"""The contract every corpus adapter implements: a release's files -> labelled clips.

An adapter knows one corpus's conventions (file names, folders, speaker list, genders, label
codes) and nothing else: decoding, checking, resampling, de-duplicating by content, folds
and writing are the same for every corpus (``hpo.corpus.prepare``). Each adapter also says
how a synthetic stand-in of its release is laid out (``synth_plan``), so every adapter is
tested on files named and placed exactly as in the release.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hpo.corpus.source import Source

MALE, FEMALE, UNKNOWN = "male", "female", ""


@dataclass(frozen=True)
class Entry:
    """A source file that follows the corpus's conventions: what it is and where it goes.

    ``out`` is the clip's path in the prepared corpus; two entries with the same ``out`` are
    the same clip (a duplicate of the release's own id), so it is also the clip's identity.
    """

    member: str  # path inside the source (zip member or path relative to the folder)
    out: str  # "clips/SPEAKER/NAME.wav"
    speaker: str
    gender: str  # MALE, FEMALE or UNKNOWN
    label: str  # one of the adapter's labels
    extra: tuple[tuple[str, str], ...] = ()  # the adapter's own manifest columns
    order: tuple[Any, ...] = ()  # manifest order among this corpus's clips (default: out)
    fold: int | None = None  # a published split's fold, as the list numbers it (CSV column)


@dataclass(frozen=True)
class SynthClip:
    """One file of a synthetic release: its path there and what the voice should express."""

    path: str
    voice: int  # seeds the speaker's voice (same number, same voice)
    male: bool
    label: str  # one of the adapter's labels; selects the synthetic emotion cue
    intensity: int = 1  # 2 = strong
    statement: int = 1  # 1 or 2: the vowel sequence
    take: int = 1  # varies the clip's own randomness


@dataclass(frozen=True)
class Classified:
    """What an adapter made of a source: entries, rejected inputs, metadata files it read."""

    entries: list[Entry]
    rejected: list[dict[str, str]]
    consumed: frozenset[str] = frozenset()


class Format:
    """One corpus's conventions. Subclasses set the class attributes and ``classify``."""

    name: str
    title: str
    labels: tuple[str, ...]  # the label set in class order (only labels with clips are kept)
    extra_columns: tuple[str, ...] = ()
    release_rate: int = 16_000  # the release's sample rate (its synthetic stand-in uses it)
    max_speakers: int = 1
    default_clips: int = 20  # synthetic clips per speaker by default
    max_clips: int = 20

    def __init__(self, **options: Path | None) -> None:
        self.options = options

    def recognises(self, member: str) -> bool:
        """Whether a file name follows this corpus's convention (format detection)."""
        return not isinstance(self.classify(member), str)

    def classify(self, member: str) -> Entry | str:
        """The entry of one source file, or why it is not a usable clip."""
        raise NotImplementedError

    def entries(self, source: Source, members: list[str]) -> Classified:
        """Every member classified; adapters with metadata files (CREMA-D) override it."""
        entries, rejected = [], []
        for m in members:
            c = self.classify(m)
            if isinstance(c, str):
                rejected.append({"file": m, "reason": c})
            else:
                entries.append(c)
        return Classified(entries, rejected)

    def label_set(self, present: Iterable[str]) -> tuple[str, ...]:
        """The corpus's classes: the declared labels that have clips, in declared order (a
        class without clips could never be learnt, and a classifier would not output it)."""
        have = set(present)
        return tuple(label for label in self.labels if label in have)

    def synth_plan(self, speakers: int, per_speaker: int) -> list[SynthClip]:
        """The files of a synthetic release with ``speakers`` speakers."""
        raise NotImplementedError

    def synth_files(self, speakers: int) -> dict[str, str]:
        """Text files that come with the release (speaker tables, read-me files)."""
        return {}


def member_path(member: str) -> PurePosixPath:
    """A member's path for parsing; zips made by some Windows tools separate with "\\"."""
    return PurePosixPath(member.replace("\\", "/"))


def wav_stem(member: str) -> tuple[str, str] | str:
    """``(parent folder, stem)`` of a .wav member (any case), or why it is not one."""
    p = member_path(member)
    ext = p.suffix.lower()
    if ext != ".wav":
        return f"not a .wav file ({ext or 'no extension'})"
    parent = p.parent.name if len(p.parts) > 1 else ""
    return parent, p.stem


def rotated(items: Sequence[Any], k: int) -> list[Any]:
    """``items`` starting at its ``k``-th (wrapping): each label gets other texts first."""
    items = list(items)
    k %= max(len(items), 1)
    return items[k:] + items[:k]


def round_robin(groups: list[list[SynthClip]], n: int) -> list[SynthClip]:
    """The first ``n`` clips taken in turn from each group (labels stay balanced)."""
    out: list[SynthClip] = []
    queues = [list(g) for g in groups]
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out
