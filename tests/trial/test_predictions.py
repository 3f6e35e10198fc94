"""Every trial keeps its per-clip validation predictions, and they are what it scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from hpo.cli import cli
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.trial.predictions import ClipPredictions, of_trial
from tests.helpers import ONE_FEATURE_SET, write_spec


def test_round_trip_keeps_labels_folds_and_probabilities() -> None:
    kept = ClipPredictions.empty()
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(8), size=10).astype(np.float32)
    kept.add(3, np.arange(10, 20), proba.argmax(1), proba)
    back = ClipPredictions.decode(kept.encode())
    assert back.clips.tolist() == list(range(10, 20)) and set(back.folds) == {3}
    assert back.pred.tolist() == proba.argmax(1).tolist()
    assert np.allclose(back.proba, proba, atol=1e-3)  # float16 on disk
    with pytest.raises(ValueError, match="fold 1: 2 predictions for 3 clips"):
        kept.add(1, np.arange(3), np.zeros(2))


def test_an_svm_trial_keeps_the_predictions_its_fold_scores_came_from(
    tmp_path: Path, prepared: Path
) -> None:
    spec = write_spec(tmp_path / "svm.toml", data={"corpus": str(prepared)}, space=ONE_FEATURE_SET)
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    (t,) = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").trials
    kept = of_trial(t)
    assert kept is not None and kept.proba is None  # the CV'd SVC has no probabilities
    corpus = load_corpus(prepared)
    y = corpus.label_ids
    # Every clip validated exactly once, in the fold the corpus assigns it.
    assert sorted(kept.clips.tolist()) == list(range(len(corpus.clips)))
    for fold in corpus_folds(corpus, 6):
        mine = kept.folds == fold.index
        assert sorted(kept.clips[mine].tolist()) == sorted(fold.valid.tolist())
        acc = accuracy_score(y[kept.clips[mine]], kept.pred[mine])
        uar = balanced_accuracy_score(y[kept.clips[mine]], kept.pred[mine])
        assert acc == pytest.approx(t.user_attrs["fold_accuracy"][fold.index], abs=1e-6)
        assert uar == pytest.approx(t.user_attrs["fold_uar"][fold.index], abs=1e-6)
    cm = np.zeros((8, 8), int)
    np.add.at(cm, (y[kept.clips], kept.pred), 1)
    assert cm.tolist() == t.user_attrs["confusion"]


def test_probabilities_too_large_for_one_attribute_are_left_out_labels_kept() -> None:
    # CREMA-D-sized: 7,442 clips x 6 classes would pass MySQL's 64 KB TEXT column.
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(6), size=7442).astype(np.float32)
    kept = ClipPredictions.empty()
    kept.add(0, np.arange(7442), proba.argmax(1), proba)
    attr = kept.encode()
    assert "proba" not in attr and len(str(attr)) < 48_000
    back = ClipPredictions.decode(attr)
    assert back.proba is None and back.pred.tolist() == proba.argmax(1).tolist()
