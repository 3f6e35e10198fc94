"""Precomputed kernels give the plain pipeline's results (scaler + SVC), fold by fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.kinds.svm.config import FeatureSettings
from hpo.kinds.svm.features import corpus_features
from hpo.kinds.svm.kernels import fold_gram, kernels, precomputed_svc
from hpo.kinds.svm.model import make_pipeline

SETTINGS = [
    {"kernel": "linear", "C": 0.5},
    {"kernel": "rbf", "C": 10.0, "gamma": 0.003},
    {"kernel": "rbf", "C": 3.0, "gamma": "scale"},
    {"kernel": "poly", "C": 1.0, "gamma": 0.01, "degree": 3, "coef0": 0.5},
    {"kernel": "sigmoid", "C": 2.0, "gamma": 0.001, "coef0": 0.2},
]


@pytest.mark.parametrize("svm", SETTINGS, ids=[s["kernel"] for s in SETTINGS])
def test_precomputed_kernels_match_the_plain_pipeline(prepared: Path, svm: dict) -> None:
    corpus = load_corpus(prepared)
    X = corpus_features(corpus, FeatureSettings(speaker_norm=True))
    y = np.array([c.emotion_id - 1 for c in corpus.clips])
    svm = {**svm, "class_weight": "balanced", "max_iter": -1}
    for fold in corpus_folds(corpus, 6)[:3]:
        plain = make_pipeline(svm).fit(X[fold.train], y[fold.train])
        expected = plain.predict(X[fold.valid])
        k_train, k_valid = kernels(svm, fold_gram(X, fold))
        got = precomputed_svc(svm).fit(k_train, y[fold.train]).predict(k_valid)
        # The same optimisation problem on the same numbers: the same predictions.
        assert np.array_equal(got, expected), (fold.index, np.mean(got == expected))
