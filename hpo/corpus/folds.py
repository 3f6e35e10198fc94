"""Speaker-independent folds: every speaker is validated exactly once, never trained on in that
fold.

Two rules, for any number of speakers. ``K`` folds: speakers are sorted (numbers as
numbers) within each gender and cut into contiguous blocks; a gender's blocks go to the
folds that are smallest so far, so folds differ in size by at most one and each gender is
spread as evenly as its count allows. On RAVDESS's 24 actors and six folds that is fold 0 =
actors 1-4, fold 1 = 5-8 and so on, two women and two men each. Speakers of unknown gender
form their own group. ``"loso"``: leave one speaker out, one fold a speaker in sorted order.
More folds than speakers (a fold would be empty) is an error.

When speakers come in groups (a dyadic corpus's sessions: the CSV's ``group`` column), both
rules cut groups instead of speakers, so a session's two speakers are never on both sides of
a split: ``K`` folds balance groups by gender (a group's gender is its speakers' when they
share one, else "mixed"), ``"loso"`` leaves one group out. ``"file"``: the folds were read
from a published split (``hpo data prepare --folds-from``, or a CSV corpus's ``fold``
column; ``hpo.corpus.splits``), not cut by a rule.

The folds are assigned once, by ``hpo data prepare``, and written into the manifest; every
study reads them from there (``corpus_folds``). A study asking for another rule is refused
with the command that re-prepares. Nested cross-validation splits the training speakers of
an outer fold with the same rule (``assign_folds``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.errors import CorpusError

if TYPE_CHECKING:
    from hpo.corpus.manifest import Corpus

LOSO = "loso"
FILE = "file"  # folds imported from a published split
FoldRule = int | str  # K, LOSO or FILE
_GENDER_ORDER = {"male": 0, "female": 1}
MIXED = "mixed"  # a group whose speakers differ in gender


def speaker_key(speaker: Any) -> tuple[int, int, str]:
    """Sort key: numbers in numeric order ("9" before "10"), then other ids by name."""
    s = str(speaker)
    return (0, int(s), s) if s.isascii() and s.isdigit() else (1, 0, s)


def _blocks(items: list[Any], n: int) -> list[list[Any]]:
    """Cut items into n contiguous blocks whose sizes differ by at most one (larger first)."""
    q, r = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        size = q + (1 if i < r else 0)
        out.append(items[start : start + size])
        start += size
    return out


def check_rule(rule: FoldRule, n_speakers: int, grouped: bool = False) -> int:
    """The number of folds ``rule`` gives over ``n_speakers`` (or groups of speakers); one
    line when it cannot."""
    units = "group(s) of speakers (the group column)" if grouped else "speaker(s)"
    if rule == LOSO:
        if n_speakers < 2:
            one = "group" if grouped else "speaker"
            raise CorpusError(f"folds: leave-one-{one}-out needs 2 {one}s, not {n_speakers}")
        return n_speakers
    if not isinstance(rule, int) or isinstance(rule, bool):
        raise CorpusError(f"folds: {rule!r} is neither a number of folds nor 'loso'")
    if rule < 2:
        raise CorpusError(f"folds: n_folds={rule}; cross-validation needs at least 2 folds")
    if n_speakers < rule:
        raise CorpusError(
            f"folds: {rule} folds asked for but the corpus has only {n_speakers} {units}, "
            f"so {rule - n_speakers} fold(s) would be empty; use --folds "
            f"{n_speakers} or fewer, or --folds loso"
        )
    return rule


def fold_units(speakers: Iterable[Any], groups: Mapping[Any, str] | None = None) -> list[list[Any]]:
    """What folds keep together, in sorted order: each group's speakers (``groups``:
    ``{speaker: group}``, ``""`` or missing for a speaker in no group), else each speaker."""
    units: dict[tuple[Any, ...], list[Any]] = {}
    for s in sorted(set(speakers), key=speaker_key):
        g = (groups or {}).get(s) or ""
        key = (0, *speaker_key(g)) if g else (1, *speaker_key(s))
        units.setdefault(key, []).append(s)
    return [units[k] for k in sorted(units)]


def assign_folds(
    actors: Iterable[Any],
    n_folds: FoldRule = 6,
    genders: Mapping[Any, str] | None = None,
    groups: Mapping[Any, str] | None = None,
) -> dict[Any, int]:
    """Map each speaker to a fold id in ``0..K-1``.

    Args:
        actors: speaker ids present in the corpus (duplicates ignored).
        n_folds: ``K`` (at least 2, at most the number of speakers) or ``"loso"``.
        genders: ``{speaker: gender}``; speakers missing or ``""`` are of unknown gender.
        groups: ``{speaker: group}``: a group's speakers always share a fold, and the rule
            cuts groups (``"loso"``: one group a fold); speakers without one are their own.

    Returns:
        ``{speaker: fold}``, deterministic for a given set of speakers, genders and groups.
    """
    units = fold_units(actors, groups)
    k = check_rule(n_folds, len(units), bool(groups) and any(len(u) > 1 for u in units))
    if n_folds == LOSO:
        return {s: i for i, unit in enumerate(units) for s in unit}
    genders = genders or {}
    by_gender: dict[str, list[list[Any]]] = {}
    for unit in units:
        seen = {genders.get(s) or "" for s in unit}
        by_gender.setdefault(seen.pop() if len(seen) == 1 else MIXED, []).append(unit)
    order = sorted(by_gender, key=lambda g: (_GENDER_ORDER.get(g, 2), g == "", g))
    sizes = [0] * k  # speakers so far
    fold_of: dict[Any, int] = {}
    for g in order:
        # Larger blocks to the smallest folds. Ties: in fold order while all folds are equal,
        # else from the last fold, so the fold that got a smaller block of one gender gets a
        # larger block of the next (RAVDESS's documented blocks).
        even = len(set(sizes)) == 1
        folds = sorted(range(k), key=lambda f: (sizes[f], f if even else -f))
        for f, block in zip(folds, _blocks(by_gender[g], k), strict=True):
            for unit in block:
                fold_of.update(dict.fromkeys(unit, f))
                sizes[f] += len(unit)
    return fold_of


def fold_members(fold_of: Mapping[Any, int]) -> dict[int, list[Any]]:
    """Invert ``{speaker: fold}`` into ``{fold: sorted speakers}``."""
    out: dict[int, list[Any]] = {}
    for speaker, fold in fold_of.items():
        out.setdefault(fold, []).append(speaker)
    return {f: sorted(a, key=speaker_key) for f, a in sorted(out.items())}


@dataclass(frozen=True)
class Fold:
    """One split: indices into the corpus's clips and the speakers on each side."""

    index: int
    train: np.ndarray
    valid: np.ndarray
    valid_actors: tuple[Any, ...]
    train_actors: tuple[Any, ...]


def _speakers_of(actors: np.ndarray, idx: np.ndarray) -> tuple[Any, ...]:
    return tuple(sorted(set(actors[idx].tolist()), key=speaker_key))


def split_by_fold(actors: np.ndarray, clip_fold: np.ndarray) -> list[Fold]:
    """Folds from each clip's speaker and fold id (ids ``0..K-1``): fold ``f`` validates the
    clips whose id is ``f`` and trains on the rest."""
    from sklearn.model_selection import PredefinedSplit

    # Leave-one-speaker-out too: its fold ids are one per speaker (or group) in the order
    # assign_folds numbered them; LeaveOneGroupOut would renumber string ids ("10" < "9").
    splits = PredefinedSplit(clip_fold).split()
    return [
        Fold(int(f), train, valid, _speakers_of(actors, valid), _speakers_of(actors, train))
        for f, (train, valid) in zip(np.unique(clip_fold), splits, strict=True)
    ]


def describe_rule(rule: FoldRule, n: int | None = None, grouped: bool = False) -> str:
    """The rule in words, as messages and ``hpo data info`` name it."""
    count = f", {n} folds" if n else ""
    if rule == FILE:
        return f"folds read from a file (file{count})"
    if rule == LOSO:
        one = "group" if grouped else "speaker"
        return f"leave-one-{one}-out folds (loso{count})"
    return f"{rule} {'group' if grouped else 'speaker'} folds"


def _check_manifest(corpus: Corpus, actors: np.ndarray, clip_fold: np.ndarray) -> list[int]:
    """The manifest's fold ids; one line when they are not a valid split of its speakers
    (and of its groups)."""
    ids = sorted(set(clip_fold.tolist()))
    if ids != list(range(len(ids))) or len(ids) < 2:
        raise CorpusError(
            f"{corpus.root}: the manifest's folds are {ids}, not 0..K-1 with K >= 2; "
            "run 'hpo data prepare' again"
        )
    fold_of: dict[Any, int] = {}
    for a, f in zip(actors.tolist(), clip_fold.tolist(), strict=True):
        if fold_of.setdefault(a, f) != f:
            raise CorpusError(
                f"{corpus.root}: speaker {a} is in more than one fold in the manifest; "
                "run 'hpo data prepare' again"
            )
    group_fold: dict[str, int] = {}
    for a, g in (corpus.speaker_groups or {}).items():
        if g and group_fold.setdefault(g, fold_of[a]) != fold_of[a]:
            raise CorpusError(
                f"{corpus.root}: group {g}'s speakers are in more than one fold in the "
                "manifest; run 'hpo data prepare' again"
            )
    return ids


def corpus_folds(corpus: Corpus, n_folds: FoldRule | None = None) -> list[Fold]:
    """The folds written in the corpus's manifest by ``hpo data prepare``: the one source
    of truth for which speakers are validated together.

    Args:
        corpus: a prepared corpus.
        n_folds: the study's rule (``K``, ``"loso"`` or ``"file"``); another rule than the
            corpus was prepared with is an error (re-prepare with ``--folds`` or
            ``--folds-from``), never a silent re-split.
    """
    actors = corpus.speakers
    clip_fold = np.array([c.fold for c in corpus.clips])
    ids = _check_manifest(corpus, actors, clip_fold)
    rule = corpus.fold_rule
    if n_folds is not None and n_folds != rule:
        asked = f'"{n_folds}"' if isinstance(n_folds, str) else n_folds
        keep = f'"{rule}"' if isinstance(rule, str) else rule
        how = "--folds-from FILE" if n_folds == FILE else f"--folds {n_folds}"
        grouped = corpus.meta.get("fold_unit") == "group"
        # More folds than speakers cannot be prepared: only the study file can change.
        fits = not isinstance(n_folds, int) or n_folds <= len(set(actors.tolist()))
        prepare = f"run 'hpo data prepare SRC --out {corpus.root} {how}', or " if fits else ""
        raise CorpusError(
            f"{corpus.root} was prepared with {describe_rule(rule, len(ids), grouped)} but the "
            f"study asks for {asked}: {prepare}set [data] folds = {keep} in the study file"
        )
    return split_by_fold(actors, clip_fold)
