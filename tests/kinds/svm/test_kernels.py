"""Precomputed kernels give the saved pipeline's results (impute, scaler, unit norm, SVC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.kinds.svm.config import FeatureSettings
from hpo.kinds.svm.features import corpus_features
from hpo.kinds.svm.kernels import fold_gram, kernels, precomputed_svc
from hpo.kinds.svm.pipeline import make_pipeline

SETTINGS = [
    {"kernel": "linear", "C": 0.5},
    {"kernel": "rbf", "C": 10.0, "gamma": 0.003},
    {"kernel": "rbf", "C": 3.0, "gamma": "scale"},
    {"kernel": "poly", "C": 1.0, "gamma": 0.01, "degree": 3, "coef0": 0.5},
    {"kernel": "sigmoid", "C": 2.0, "gamma": 0.001, "coef0": 0.2},
    # Scale-free: C and gamma relative to unit-norm features.
    {"scale": "unit", "kernel": "linear", "C": 0.3},
    {"scale": "unit", "kernel": "linear", "C": 300.0},
    {"scale": "unit", "kernel": "rbf", "C": 10.0, "gamma": 0.5},
    {"scale": "unit", "kernel": "poly", "C": 1.0, "gamma": 2.0, "degree": 2, "coef0": 1.0},
    {"scale": "unit", "kernel": "sigmoid", "C": 2.0, "gamma": 0.3, "coef0": 0.0},
    # Feature selection fitted on the fold's training clips, a step of both paths.
    {"scale": "unit", "select_k": 100, "kernel": "linear", "C": 1.0},
    {"scale": "unit", "select_k": 50, "kernel": "rbf", "C": 5.0, "gamma": 0.5},
]


@pytest.fixture(scope="module")
def data(prepared: Path) -> tuple:
    corpus = load_corpus(prepared)
    X = corpus_features(corpus, FeatureSettings(speaker_norm=True))
    # Non-finite values as openSMILE leaves them, in training and validation clips alike:
    # both paths impute them with the training clips' medians.
    rng = np.random.default_rng(3)
    X[rng.integers(0, len(X), 40), rng.integers(0, X.shape[1], 40)] = np.nan
    X[rng.integers(0, len(X), 5), rng.integers(0, X.shape[1], 5)] = np.inf
    return corpus, X


@pytest.mark.parametrize(
    "svm",
    SETTINGS,
    ids=[f"{s.get('scale', 'abs')}-{s.get('select_k', 'all')}-{s['kernel']}" for s in SETTINGS],
)
def test_precomputed_kernels_match_the_pipeline(data: tuple, svm: dict) -> None:
    corpus, X = data
    y = corpus.label_ids
    svm = {**svm, "class_weight": "balanced", "max_iter": -1}
    for fold in corpus_folds(corpus, 6)[:3]:
        plain = make_pipeline(svm).fit(X[fold.train], y[fold.train])
        expected = plain.predict(X[fold.valid])
        k_train, k_valid = kernels(svm, fold_gram(X, y, fold, svm))
        got = precomputed_svc(svm).fit(k_train, y[fold.train]).predict(k_valid)
        # The same optimisation problem on the same numbers: the same predictions.
        assert np.array_equal(got, expected), (fold.index, np.mean(got == expected))


def test_a_k_above_the_set_size_is_no_selection(prepared: Path, tmp_path: Path) -> None:
    from hpo.kinds import load_spec
    from hpo.kinds.svm.objective import SvmObjective
    from tests.helpers import ONE_FEATURE_SET, write_spec

    spec = load_spec(
        write_spec(tmp_path / "svm.toml", data={"corpus": str(prepared)}, space=ONE_FEATURE_SET)
    )
    corpus = load_corpus(prepared)
    obj = SvmObjective(spec, corpus)
    s, fold = FeatureSettings(set="librosa", speaker_norm=True), obj.folds[0]
    svm = spec.settings.merged({"kernel": "linear", "C": 1.0})["svm"]
    # "At most 1000 features" of 403 keeps them all: the same Gram matrices, built once.
    assert obj.gram(s, fold, {**svm, "select_k": 1000}) is obj.gram(s, fold, svm)
    X, y = obj.features(s), corpus.label_ids
    a = make_pipeline({**svm, "select_k": 1000}).fit(X[fold.train], y[fold.train])
    b = make_pipeline(svm).fit(X[fold.train], y[fold.train])
    # The same model, up to the summation order of a copied array.
    va = X[fold.valid]
    assert np.allclose(a.decision_function(va), b.decision_function(va), rtol=0, atol=1e-9)
    assert np.array_equal(a.predict(va), b.predict(va))
