"""Folds for any corpus: any number of speakers, string ids, known or unknown genders, and
leave-one-speaker-out; the RAVDESS blocks are in test_folds.py."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hpo.corpus.folds import (
    assign_folds,
    corpus_folds,
    fold_members,
    speaker_key,
    split_by_fold,
)
from hpo.corpus.manifest import Clip, Corpus, load_corpus
from hpo.errors import CorpusError
from hpo.study.nested import inner_folds

EMODB = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male"}
EMODB |= {"12": "male", "13": "female", "14": "female", "15": "male", "16": "female"}


def test_emodb_ten_speakers_in_six_folds_are_near_equal_and_gender_balanced() -> None:
    members = fold_members(assign_folds(EMODB, 6, EMODB))
    sizes = [len(m) for m in members.values()]
    assert sorted(sizes) == [1, 1, 2, 2, 2, 2] and sum(sizes) == 10
    for speakers in members.values():
        # No fold holds two speakers of one gender while another fold has none of it.
        genders = Counter(EMODB[s] for s in speakers)
        assert max(genders.values()) == 1
    # Ids keep their spelling ("03"); men in order from fold 0, women from the last fold,
    # so the folds a man left smaller get a woman.
    assert members[0] == ["03"] and members[1] == ["10", "16"] and members[5] == ["08"]


def test_genders_spread_as_evenly_as_the_counts_allow_with_unknown_speakers() -> None:
    genders = {f"s{i}": g for i, g in enumerate(["male"] * 5 + ["female"] * 3 + [""] * 4)}
    fold_of = assign_folds(genders, 3, genders)
    for g in ("male", "female", ""):
        per_fold = Counter(fold_of[s] for s, x in genders.items() if x == g)
        counts = [per_fold.get(f, 0) for f in range(3)]
        assert max(counts) - min(counts) <= 1, (g, counts)
    sizes = Counter(fold_of.values())
    assert sorted(sizes.values()) == [4, 4, 4]


def test_numbers_sort_as_numbers_and_the_order_given_does_not_matter() -> None:
    ids = [str(a) for a in range(1, 13)]
    a = assign_folds(ids, 3)
    assert a == assign_folds(list(reversed(ids)), 3)
    assert fold_members(a)[0] == ["1", "2", "3", "4"]  # not "1", "10", "11", "12"


def test_leave_one_speaker_out() -> None:
    fold_of = assign_folds(["KL", "DC", "JK", "JE"], "loso")
    assert fold_of == {"DC": 0, "JE": 1, "JK": 2, "KL": 3}
    speakers = np.repeat(np.array(["DC", "JE", "JK", "KL"]), 5)
    folds = split_by_fold(speakers, np.array([fold_of[s] for s in speakers]))
    for f in folds:
        assert len(f.valid_actors) == 1 and f.valid_actors[0] not in f.train_actors
        assert len(f.train) == 15 and len(f.valid) == 5


@pytest.mark.parametrize(
    ("n", "rule", "why"),
    [
        (4, 6, "6 folds asked for but the corpus has only 4 speaker(s)"),
        (4, 5, "1 fold(s) would be empty"),
        (1, "loso", "needs 2 speakers"),
        (4, 1, "at least 2 folds"),
        (4, "lso", "neither a number of folds nor 'loso'"),
    ],
)
def test_impossible_fold_rules_are_one_line(n: int, rule: object, why: str) -> None:
    with pytest.raises(CorpusError, match=why.replace("(", r"\(").replace(")", r"\)")):
        assign_folds([f"s{i}" for i in range(n)], rule)  # type: ignore[arg-type]


def test_nested_cv_splits_the_training_speakers_by_the_same_rule(prepared: Path) -> None:
    corpus = load_corpus(prepared)
    outer = corpus_folds(corpus)[0]  # actors 1-4 held out
    loso = inner_folds(corpus, outer, "loso")
    assert [f.valid_actors for f in loso] == [(a,) for a in range(5, 25)]
    for f in loso:  # indices into the whole corpus, never an outer validation clip
        assert not set(f.train) & set(outer.valid) and not set(f.valid) & set(outer.valid)
    # K folds use the manifest's genders, also for speakers whose ids say nothing of them.
    k = inner_folds(corpus, outer, 5)
    assert all(
        sorted(corpus.speaker_genders[a] for a in f.valid_actors) == ["female"] * 2 + ["male"] * 2
        for f in k
    )


def test_a_study_asking_loso_of_a_k_fold_corpus_is_told_how_to_fix_it(prepared: Path) -> None:
    corpus = load_corpus(prepared)
    with pytest.raises(CorpusError, match="--folds loso', or set \\[data\\] folds = 6"):
        corpus_folds(corpus, "loso")
    loso = dataclasses.replace(corpus, meta={**corpus.meta, "folds": "loso"})
    with pytest.raises(CorpusError, match='leave-one-speaker-out .* set \\[data\\] folds = "loso"'):
        corpus_folds(loso, 6)


# An IEMOCAP-like dyadic corpus: five sessions of one woman and one man each.
SESSIONS = {f"Ses0{i}{g}": f"Ses0{i}" for i in range(1, 6) for g in "FM"}
DYAD_GENDERS = {s: "female" if s.endswith("F") else "male" for s in SESSIONS}


@pytest.mark.parametrize("rule", [5, 2, "loso"])
def test_groups_keep_a_sessions_speakers_in_one_fold(rule: object) -> None:
    fold_of = assign_folds(SESSIONS, rule, DYAD_GENDERS, SESSIONS)  # type: ignore[arg-type]
    for i in range(1, 6):
        assert fold_of[f"Ses0{i}F"] == fold_of[f"Ses0{i}M"]
    # Without groups, 5 folds pair the women with each other; loso gives 10 folds, not 5.
    n_folds = {5: 5, 2: 2, "loso": 5}[rule]  # type: ignore[index]
    assert sorted(set(fold_of.values())) == list(range(n_folds))
    if rule != 2:
        assert fold_members(fold_of)[0] == ["Ses01F", "Ses01M"]


def test_too_few_groups_for_the_folds_is_one_line() -> None:
    two = {s: g for s, g in SESSIONS.items() if g in ("Ses01", "Ses02")}
    with pytest.raises(CorpusError, match="only 2 group\\(s\\) of speakers"):
        assign_folds(two, 3, DYAD_GENDERS, two)


def test_nested_cv_keeps_groups_together_inside_an_outer_fold(tmp_path: Path) -> None:
    fold_of = assign_folds(SESSIONS, 5, DYAD_GENDERS, SESSIONS)
    clips = [
        Clip(
            f"clips/{s}/{k}.wav",
            s,
            DYAD_GENDERS[s],
            "a",
            fold_of[s],
            1.0,
            1,
            16000,
            "",
            "",
            (("group", g),),
        )
        for s, g in SESSIONS.items()
        for k in range(2)
    ]
    corpus = Corpus(tmp_path, clips, {"folds": 5, "fold_unit": "group"})
    outer = corpus_folds(corpus, 5)[0]
    for rule in (4, "loso"):
        inner = inner_folds(corpus, outer, rule)
        assert len(inner) == 4
        for f in inner:  # one session held out, never one of its two speakers alone
            assert len({SESSIONS[s] for s in f.valid_actors}) == 1 and len(f.valid_actors) == 2


def _old_split_by_fold(actors: np.ndarray, clip_fold: np.ndarray) -> list[tuple]:
    """The hand-written split PredefinedSplit replaced: the reference."""
    out = []
    for f in range(int(clip_fold.max()) + 1):
        valid, train = np.flatnonzero(clip_fold == f), np.flatnonzero(clip_fold != f)
        out.append((f, train, valid, sorted(set(actors[valid].tolist()), key=speaker_key)))
    return out


@pytest.mark.parametrize("rule", [3, 6, "loso"])
@pytest.mark.parametrize("ids", ["numbers", "strings"])
def test_split_by_fold_gives_what_the_hand_written_split_gave(rule: object, ids: str) -> None:
    rng = np.random.default_rng(0)
    speakers = list(range(1, 13)) if ids == "numbers" else [f"s{i}" for i in range(12)]
    fold_of = assign_folds(speakers, rule)
    clips = np.array(speakers)[rng.integers(0, 12, 200)]  # clips of speakers, shuffled
    clip_fold = np.array([fold_of[s.item()] for s in clips])
    folds = split_by_fold(clips, clip_fold)
    old = _old_split_by_fold(clips, clip_fold)
    assert len(folds) == len(old)
    for f, (index, train, valid, valid_speakers) in zip(folds, old, strict=True):
        assert f.index == index and list(f.valid_actors) == valid_speakers
        assert np.array_equal(f.train, train) and np.array_equal(f.valid, valid)
