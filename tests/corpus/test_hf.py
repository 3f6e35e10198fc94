from __future__ import annotations

from pathlib import Path

import numpy as np

from hpo.corpus.hf import load_dataset_dict
from hpo.corpus.manifest import load_corpus


def test_the_corpus_as_a_datasetdict_split_by_fold(prepared: Path) -> None:
    dd = load_dataset_dict(prepared)
    corpus = load_corpus(prepared)
    assert list(dd) == [f"fold{k}" for k in range(6)]
    # Each split holds exactly the clips of its fold's actors, and all clips appear once.
    assert sum(len(ds) for ds in dd.values()) == len(corpus.clips)
    for k, ds in enumerate(dd.values()):
        assert set(ds["speaker"]) == set(range(4 * k + 1, 4 * k + 5))
    row = dd["fold2"][0]
    assert row["audio"]["sampling_rate"] == 16_000
    assert isinstance(row["audio"]["array"], np.ndarray) and row["audio"]["array"].ndim == 1
    assert row["label"] == row["emotion_id"] - 1
