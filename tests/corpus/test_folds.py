from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpo.corpus.folds import assign_folds, corpus_folds, fold_members, split_by_fold
from hpo.corpus.formats.ravdess import gender_of
from hpo.corpus.manifest import load_corpus
from hpo.errors import CorpusError


def test_six_folds_of_two_women_and_two_men() -> None:
    members = fold_members(assign_folds(range(1, 25), 6))
    assert len(members) == 6
    for actors in members.values():
        # Each fold: 4 actors, 2 male (odd) and 2 female (even).
        assert len(actors) == 4
        assert sorted(gender_of(a) for a in actors) == ["female", "female", "male", "male"]


def test_every_actor_validated_exactly_once_and_never_trained_on() -> None:
    # Clips as the manifest has them: actor and fold per clip, 3 clips an actor.
    actors = np.repeat(np.arange(1, 25), 3)
    fold_of = assign_folds(range(1, 25), 6)
    folds = split_by_fold(actors, np.array([fold_of[a] for a in actors]))
    validated: list[int] = []
    for k, f in enumerate(folds):
        # The documented blocks: fold k validates actors 4k+1..4k+4, trains on the rest.
        assert f.valid_actors == tuple(range(4 * k + 1, 4 * k + 5))
        assert set(actors[f.valid]) == set(f.valid_actors)
        assert not set(actors[f.train]) & set(actors[f.valid])  # no actor on both sides
        assert len(f.train) + len(f.valid) == len(actors)
        validated.extend(actors[f.valid].tolist())
    assert sorted(set(validated)) == list(range(1, 25))
    assert len(validated) == len(actors)  # every clip validated exactly once


def test_a_study_asking_for_another_fold_count_is_refused(prepared: Path) -> None:
    corpus = load_corpus(prepared)
    assert len(corpus_folds(corpus, 6)) == 6
    with pytest.raises(CorpusError, match="prepared with 6 speaker folds but the study asks for 4"):
        corpus_folds(corpus, 4)
    # On this corpus 4 folds can be prepared, and the message says how.
    with pytest.raises(CorpusError, match="run 'hpo data prepare SRC --out .* --folds 4'"):
        corpus_folds(corpus, 4)


def test_more_folds_than_speakers_points_only_at_the_study_file(prepared: Path) -> None:
    # 30 folds of 24 speakers cannot be prepared (TESS's 2 speakers and a 6-fold study): the
    # message must not send the user to a command that refuses it.
    with pytest.raises(CorpusError) as e:
        corpus_folds(load_corpus(prepared), 30)
    assert "hpo data prepare" not in str(e.value)
    assert str(e.value).endswith("set [data] folds = 6 in the study file")


def test_deterministic_and_independent_of_input_order() -> None:
    assert assign_folds(range(1, 25)) == assign_folds(reversed(range(1, 25)))


@pytest.mark.parametrize("n", [2, 3, 4, 6, 12])
def test_fold_counts_that_divide_the_actors_give_equal_balanced_folds(n: int) -> None:
    members = fold_members(assign_folds(range(1, 25), n))
    assert {len(a) for a in members.values()} == {24 // n}
    for actors in members.values():
        assert sum(a % 2 for a in actors) == len(actors) // 2


def test_missing_actor_falls_back_to_near_equal_folds_without_leak() -> None:
    actors = [a for a in range(1, 25) if a != 18]
    fold_of = assign_folds(actors, 6)
    assert set(fold_of) == set(actors)
    sizes = [len(v) for v in fold_members(fold_of).values()]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 23


def test_fewer_actors_than_folds_is_an_error() -> None:
    with pytest.raises(CorpusError, match="3 speaker"):
        assign_folds([1, 2, 3], 6)
    with pytest.raises(CorpusError, match="at least 2"):
        assign_folds(range(1, 25), 1)
