"""Speaker-independent folds: every actor is validated exactly once, never trained on in that fold.

Six folds of four actors on the full corpus, each with two women and two men: actors are
sorted by number within each gender and cut into contiguous blocks, so fold 0 is actors
1-4, fold 1 is 5-8 and so on. When the actors do not split evenly (a corpus missing
actors), the documented fallback is near-equal folds (sizes differ by at most one, genders
spread as evenly as the counts allow); fewer actors than folds is an error.

The folds are assigned once, by ``hpo data prepare``, and written into the manifest; every
study reads them from there (``corpus_folds``). A study asking for another count is refused
with the command that re-prepares. Nested cross-validation splits the training actors of
an outer fold with the same ``assign_folds`` rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hpo.corpus.ravdess import gender_of
from hpo.errors import CorpusError

if TYPE_CHECKING:
    from hpo.corpus.manifest import Corpus


def _blocks(items: list[int], n: int) -> list[list[int]]:
    """Cut items into n contiguous blocks whose sizes differ by at most one (larger first)."""
    q, r = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        size = q + (1 if i < r else 0)
        out.append(items[start : start + size])
        start += size
    return out


def assign_folds(actors: Iterable[int], n_folds: int = 6) -> dict[int, int]:
    """Map each actor to a fold id in ``0..n_folds-1``.

    Args:
        actors: actor numbers present in the corpus (duplicates ignored).
        n_folds: how many folds; at least 2 and at most the number of actors.

    Returns:
        ``{actor: fold}``, deterministic for a given set of actors.
    """
    actors = sorted(set(actors))
    if n_folds < 2:
        raise CorpusError(f"folds: n_folds={n_folds}; cross-validation needs at least 2 folds")
    if len(actors) < n_folds:
        raise CorpusError(
            f"folds: the corpus has {len(actors)} actor(s) but {n_folds} folds were asked for; "
            "use fewer folds or prepare more actors"
        )
    male = [a for a in actors if gender_of(a) == "male"]
    female = [a for a in actors if gender_of(a) == "female"]
    # Give the fold that gets a smaller block of one gender a larger block of the other, so
    # fold sizes stay within one of each other when the genders are unbalanced.
    male_blocks = _blocks(male, n_folds)
    female_blocks = (
        _blocks(female, n_folds)[::-1] if len(male) % n_folds else _blocks(female, n_folds)
    )
    fold_of: dict[int, int] = {}
    for fold, (m, f) in enumerate(zip(male_blocks, female_blocks, strict=True)):
        for a in m + f:
            fold_of[a] = fold
    return fold_of


def fold_members(fold_of: Mapping[int, int]) -> dict[int, list[int]]:
    """Invert ``{actor: fold}`` into ``{fold: sorted actors}``."""
    out: dict[int, list[int]] = {}
    for actor, fold in fold_of.items():
        out.setdefault(fold, []).append(actor)
    return {f: sorted(a) for f, a in sorted(out.items())}


@dataclass(frozen=True)
class Fold:
    """One split: indices into the corpus's clips and the actors on each side."""

    index: int
    train: np.ndarray
    valid: np.ndarray
    valid_actors: tuple[int, ...]
    train_actors: tuple[int, ...]


def split_by_fold(actors: np.ndarray, clip_fold: np.ndarray) -> list[Fold]:
    """Folds from each clip's actor and fold id (ids ``0..K-1``)."""
    folds = []
    for f in range(int(clip_fold.max()) + 1):
        valid = np.flatnonzero(clip_fold == f)
        train = np.flatnonzero(clip_fold != f)
        folds.append(
            Fold(
                f,
                train,
                valid,
                tuple(sorted(set(actors[valid].tolist()))),
                tuple(sorted(set(actors[train].tolist()))),
            )
        )
    return folds


def corpus_folds(corpus: Corpus, n_folds: int | None = None) -> list[Fold]:
    """The folds written in the corpus's manifest by ``hpo data prepare``: the one source
    of truth for which actors are validated together.

    Args:
        corpus: a prepared corpus.
        n_folds: how many folds the study expects; a different count than the corpus was
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
                f"{corpus.root}: actor {a} is in more than one fold in the manifest; "
                "run 'hpo data prepare' again"
            )
    if n_folds is not None and n_folds != len(ids):
        raise CorpusError(
            f"{corpus.root} was prepared with {len(ids)} actor folds but the study asks for "
            f"{n_folds}: run 'hpo data prepare SRC --out {corpus.root} --folds {n_folds}', "
            f"or set [data] folds = {len(ids)} in the study file"
        )
    return split_by_fold(actors, clip_fold)
