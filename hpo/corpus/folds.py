"""Speaker-independent folds: every speaker is validated exactly once, never trained on in that
fold.

Two rules, for any number of speakers. ``K`` folds: speakers are sorted (numbers as
numbers) within each gender and cut into contiguous blocks; a gender's blocks go to the
folds that are smallest so far, so folds differ in size by at most one and each gender is
spread as evenly as its count allows. On RAVDESS's 24 actors and six folds that is fold 0 =
actors 1-4, fold 1 = 5-8 and so on, two women and two men each. Speakers of unknown gender
form their own group. ``"loso"``: leave one speaker out, one fold a speaker in sorted order.
More folds than speakers (a fold would be empty) is an error.

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
FoldRule = int | str  # K, or LOSO
_GENDER_ORDER = {"male": 0, "female": 1}


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


def check_rule(rule: FoldRule, n_speakers: int) -> int:
    """The number of folds ``rule`` gives over ``n_speakers``; one line when it cannot."""
    if rule == LOSO:
        if n_speakers < 2:
            raise CorpusError(f"folds: leave-one-speaker-out needs 2 speakers, not {n_speakers}")
        return n_speakers
    if not isinstance(rule, int) or isinstance(rule, bool):
        raise CorpusError(f"folds: {rule!r} is neither a number of folds nor 'loso'")
    if rule < 2:
        raise CorpusError(f"folds: n_folds={rule}; cross-validation needs at least 2 folds")
    if n_speakers < rule:
        raise CorpusError(
            f"folds: {rule} folds asked for but the corpus has only {n_speakers} actor(s) "
            f"(speakers), so {rule - n_speakers} fold(s) would be empty; use --folds "
            f"{n_speakers} or fewer, or --folds loso"
        )
    return rule


def assign_folds(
    actors: Iterable[Any], n_folds: FoldRule = 6, genders: Mapping[Any, str] | None = None
) -> dict[Any, int]:
    """Map each speaker to a fold id in ``0..K-1``.

    Args:
        actors: speaker ids present in the corpus (duplicates ignored).
        n_folds: ``K`` (at least 2, at most the number of speakers) or ``"loso"``.
        genders: ``{speaker: gender}``; speakers missing or ``""`` are of unknown gender.

    Returns:
        ``{speaker: fold}``, deterministic for a given set of speakers and genders.
    """
    speakers = sorted(set(actors), key=speaker_key)
    k = check_rule(n_folds, len(speakers))
    if n_folds == LOSO:
        return {s: i for i, s in enumerate(speakers)}
    genders = genders or {}
    groups: dict[str, list[Any]] = {}
    for s in speakers:
        groups.setdefault(genders.get(s) or "", []).append(s)
    order = sorted(groups, key=lambda g: (_GENDER_ORDER.get(g, 2), g == "", g))
    sizes = [0] * k
    fold_of: dict[Any, int] = {}
    for g in order:
        # Larger blocks to the smallest folds. Ties: in fold order while all folds are equal,
        # else from the last fold, so the fold that got a smaller block of one gender gets a
        # larger block of the next (RAVDESS's documented blocks).
        even = len(set(sizes)) == 1
        folds = sorted(range(k), key=lambda f: (sizes[f], f if even else -f))
        for f, block in zip(folds, _blocks(groups[g], k), strict=True):
            for s in block:
                fold_of[s] = f
            sizes[f] += len(block)
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
    """Folds from each clip's speaker and fold id (ids ``0..K-1``)."""
    folds = []
    for f in range(int(clip_fold.max()) + 1):
        valid = np.flatnonzero(clip_fold == f)
        train = np.flatnonzero(clip_fold != f)
        folds.append(
            Fold(f, train, valid, _speakers_of(actors, valid), _speakers_of(actors, train))
        )
    return folds


def describe_rule(rule: FoldRule, n: int | None = None) -> str:
    if rule == LOSO:
        return f"leave-one-speaker-out folds (loso{f', {n} folds' if n else ''})"
    return f"{rule} actor folds"


def corpus_folds(corpus: Corpus, n_folds: FoldRule | None = None) -> list[Fold]:
    """The folds written in the corpus's manifest by ``hpo data prepare``: the one source
    of truth for which speakers are validated together.

    Args:
        corpus: a prepared corpus.
        n_folds: the study's rule (``K`` or ``"loso"``); another rule than the corpus was
            prepared with is an error (re-prepare with ``--folds``), never a silent re-split.
    """
    actors = corpus.speakers
    clip_fold = np.array([c.fold for c in corpus.clips])
    ids = sorted(set(clip_fold.tolist()))
    if ids != list(range(len(ids))) or len(ids) < 2:
        raise CorpusError(
            f"{corpus.root}: the manifest's folds are {ids}, not 0..K-1 with K >= 2; "
            "run 'hpo data prepare' again"
        )
    for a in set(actors.tolist()):
        if len(set(clip_fold[actors == a].tolist())) != 1:
            raise CorpusError(
                f"{corpus.root}: speaker {a} is in more than one fold in the manifest; "
                "run 'hpo data prepare' again"
            )
    rule = corpus.fold_rule
    if n_folds is not None and n_folds != rule:
        asked = "loso" if n_folds == LOSO else n_folds
        keep = '"loso"' if rule == LOSO else rule
        raise CorpusError(
            f"{corpus.root} was prepared with {describe_rule(rule, len(ids))} but the study asks "
            f"for {asked}: run 'hpo data prepare SRC --out {corpus.root} --folds {asked}', "
            f"or set [data] folds = {keep} in the study file"
        )
    return split_by_fold(actors, clip_fold)
