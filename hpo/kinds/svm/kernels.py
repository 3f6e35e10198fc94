"""Precomputed SVM kernels: a trial on 6,373 ComParE features costs what one on 88 does.

What a trial varies (kernel, C, gamma, degree, coef0) never changes the preprocessed
features of a fold (the pipeline's own steps before the SVC, ``pipeline.preprocessing``:
imputation, feature selection, standardisation and, with scale-free parameters, the
unit-norm scaling, all fitted on the fold's training clips), so per preprocessing variant
and fold the linear Gram matrices (train x train, valid x train) and squared norms are
computed once. Every kernel of scikit-learn's SVC is a cheap element-wise function of them:

    linear   K = X Xᵀ          rbf      exp(-γ (|x|² + |x'|² - 2 x·x'))
    poly     (γ x·x' + r)^d    sigmoid  tanh(γ x·x' + r)

and ``SVC(kernel="precomputed")`` then solves the same problem as the pipeline
``hpo train`` saves (``pipeline.make_pipeline``) on the same numbers (tests compare the two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.corpus.folds import Fold


@dataclass(frozen=True)
class FoldGram:
    """One fold's preprocessed features, as Gram matrices."""

    train: np.ndarray  # (n_train, n_train) X_tr X_trᵀ
    valid: np.ndarray  # (n_valid, n_train) X_va X_trᵀ
    sq_train: np.ndarray  # (n_train,) |x|²
    sq_valid: np.ndarray  # (n_valid,)
    n_features: int
    variance: float  # of the preprocessed training matrix (gamma="scale")


def fold_gram(X: np.ndarray, y: np.ndarray, fold: Fold, svm: dict[str, Any]) -> FoldGram:
    """The pipeline's preprocessing fitted on the fold's training rows (and their labels,
    for feature selection), then Gram matrices."""
    from hpo.kinds.svm.pipeline import preprocessing

    prep = preprocessing(svm)
    xt = prep.fit_transform(X[fold.train], y[fold.train])
    xv = prep.transform(X[fold.valid])
    return FoldGram(
        train=xt @ xt.T,
        valid=xv @ xt.T,
        sq_train=np.einsum("ij,ij->i", xt, xt),
        sq_valid=np.einsum("ij,ij->i", xv, xv),
        n_features=xt.shape[1],
        variance=float(xt.var()),
    )


def fused_gram(grams: list[FoldGram]) -> FoldGram:
    """The Gram matrices of a fused set from those of its sets, each preprocessed alone to
    unit mean squared norm (``pipeline.fused_blocks``): the fused rows are the sets' rows
    side by side, each times ``1/sqrt(n)``, so every dot product and squared norm is the
    mean of the sets' own. Columns stay centred on the training rows, so the variance is
    the mean squared value."""
    n = len(grams)
    mean = lambda attr: sum(getattr(g, attr) for g in grams) / n  # noqa: E731
    width = sum(g.n_features for g in grams)
    sq_train = mean("sq_train")
    return FoldGram(
        train=mean("train"),
        valid=mean("valid"),
        sq_train=sq_train,
        sq_valid=mean("sq_valid"),
        n_features=width,
        variance=float(np.mean(sq_train)) / width,
    )


def _gamma(svm: dict[str, Any], g: FoldGram) -> float:
    gamma = svm.get("gamma", "scale")
    if gamma == "scale":
        return 1.0 / (g.n_features * g.variance) if g.variance > 0 else 1.0
    if gamma == "auto":
        return 1.0 / g.n_features
    return float(gamma)


def kernels(svm: dict[str, Any], g: FoldGram) -> tuple[np.ndarray, np.ndarray]:
    """(train x train, valid x train) kernel matrices for the SVC settings ``svm``."""
    kind = svm["kernel"]
    if kind == "linear":
        return g.train, g.valid
    gamma, coef0, degree = _gamma(svm, g), float(svm.get("coef0", 0.0)), int(svm.get("degree", 3))
    if kind == "rbf":
        d_tr = g.sq_train[:, None] + g.sq_train[None, :] - 2 * g.train
        d_va = g.sq_valid[:, None] + g.sq_train[None, :] - 2 * g.valid
        return np.exp(-gamma * np.maximum(d_tr, 0)), np.exp(-gamma * np.maximum(d_va, 0))
    if kind == "poly":
        return (gamma * g.train + coef0) ** degree, (gamma * g.valid + coef0) ** degree
    if kind == "sigmoid":
        return np.tanh(gamma * g.train + coef0), np.tanh(gamma * g.valid + coef0)
    raise ValueError(f"unknown kernel {kind!r}")


def precomputed_svc(svm: dict[str, Any], seed: int = 0):
    """An SVC on precomputed kernels with the study's fixed settings."""
    from hpo.kinds.svm.pipeline import svc

    return svc(svm, seed, precomputed=True)
