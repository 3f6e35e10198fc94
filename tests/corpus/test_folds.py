from __future__ import annotations

import pytest

from hpo.corpus.folds import assign_folds, fold_members
from hpo.corpus.ravdess import gender_of
from hpo.errors import CorpusError


def test_six_folds_of_two_women_and_two_men() -> None:
    members = fold_members(assign_folds(range(1, 25), 6))
    assert len(members) == 6
    for actors in members.values():
        # Each fold: 4 actors, 2 male (odd) and 2 female (even).
        assert len(actors) == 4
        assert sorted(gender_of(a) for a in actors) == ["female", "female", "male", "male"]


def test_every_actor_validated_exactly_once_and_never_trained_on() -> None:
    fold_of = assign_folds(range(1, 25), 6)
    validated: list[int] = []
    for fold in range(6):
        val = {a for a, f in fold_of.items() if f == fold}
        train = {a for a, f in fold_of.items() if f != fold}
        assert not val & train  # no actor on both sides of one fold
        assert val | train == set(range(1, 25))
        validated.extend(val)
    assert sorted(validated) == list(range(1, 25))


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
    with pytest.raises(CorpusError, match="3 actor"):
        assign_folds([1, 2, 3], 6)
    with pytest.raises(CorpusError, match="at least 2"):
        assign_folds(range(1, 25), 1)
