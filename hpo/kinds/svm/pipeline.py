"""The SVM's scikit-learn pipeline; every step is fitted on the training clips only.

    finite (±inf → NaN) → impute (training median) → select (select_k, ANOVA F) → StandardScaler
        → unit mean squared norm (scale = "unit") → SVC

A fused feature set (``"egemaps+compare"``, early fusion) runs select → StandardScaler →
unit mean squared norm on each set's own columns, then weighs every set by ``1/sqrt(n)``
for ``n`` sets (``fused_blocks``): each set then contributes the same share of every
kernel whatever its size (88 eGeMAPS features weigh as much as 6,373 ComParE ones), and
the linear kernel is the mean of the sets' own unit-norm kernels. All of it is fitted on
the training clips, like every other step.

The trial objective fits the same preprocessing steps per fold (``preprocessing``) and
feeds their output to a precomputed-kernel SVC (``kernels.py``); ``hpo train`` saves the
whole pipeline (``SpeakerCalibrated``), so the label ``hpo predict`` gives is the decision
cross-validation scored; its probabilities are Platt-scaled on speaker folds.

Scale-free parameters (``[svm] scale = "unit"``). After standardisation a training row's
mean squared norm is the number of non-constant features ``d``; dividing every feature by
``sqrt(d)`` makes it 1, so the linear kernel is ``x·x' / d`` and a kernel's ``gamma`` is
relative to scikit-learn's ``gamma="scale"`` (``1 / d`` here). The same C and gamma then
mean the same on 88 and on 6,373 features. On the plain ``StandardScaler`` + ``SVC`` they
are ``absolute_params``: the linear kernel's C times ``1/d``, every gamma times ``1/d``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.utils.validation import check_is_fitted


def inf_to_nan(X: np.ndarray) -> np.ndarray:
    """``X`` as float64 (every later step computes in one precision) with ±inf as NaN, which
    the imputer then fills: openSMILE leaves a few functionals NaN or infinite on clips with
    too few voiced frames."""
    X = np.array(X, dtype=np.float64)  # a copy: the caller's array is left alone
    X[np.isinf(X)] = np.nan
    return X


class UnitMeanSquare(TransformerMixin, BaseEstimator):
    """Scale all features by one factor so the training rows' mean squared norm is 1.

    ``scale_`` is ``1 / mean |x|²`` over the training rows: on standardised features,
    ``1 / d`` for ``d`` non-constant features, which is scikit-learn's ``gamma="scale"``."""

    def fit(self, X: np.ndarray, y: Any = None) -> UnitMeanSquare:
        X = np.asarray(X, dtype=np.float64)
        self.scale_ = unit_scale(np.einsum("ij,ij->i", X, X))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "scale_")
        return np.asarray(X, dtype=np.float64) * np.sqrt(self.scale_)


class AnovaSelect(SelectKBest):
    """``SelectKBest(f_classif, k)`` fitted on the training clips' labels, quietly: F is
    undefined (NaN, never selected) for a feature constant over them, which numpy warns
    about on every fold; a k above the feature count keeps every feature."""

    def __init__(self, k: int | str = "all") -> None:
        super().__init__(f_classif, k=k)

    def fit(self, X: np.ndarray, y: np.ndarray) -> AnovaSelect:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)  # k > n_features: all are kept
            return super().fit(X, y)


def unit_scale(sq_norms: np.ndarray) -> float:
    """``1 / mean squared norm`` of the training rows (1 when every feature is constant)."""
    mean = float(np.mean(sq_norms)) if len(sq_norms) else 0.0
    return 1.0 / mean if mean > 0 else 1.0


def is_unit(svm: dict[str, Any]) -> bool:
    """Whether C and gamma are scale-free (exports made before the setting are absolute)."""
    return svm.get("scale", "absolute") == "unit"


Blocks = Sequence[tuple[str, int]]  # (set name, number of its features), in column order


def preprocessing(svm: dict[str, Any], blocks: Blocks | None = None):
    """The pipeline's steps before the SVC, unfitted: impute, (select), standardise,
    (unit norm); with ``blocks`` (a fused set: two or more), impute, then those steps per
    set and the equal weighting (``fused_blocks``). Selection uses the training clips'
    labels: fit with ``y``."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    impute: list[tuple[str, Any]] = [
        ("finite", FunctionTransformer(inf_to_nan)),
        # The median of the training rows' finite values; 0 for a column with none.
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if blocks is not None and len(blocks) > 1:
        return Pipeline([*impute, ("fuse", fused_blocks(svm, blocks))])
    return Pipeline([*impute, *_set_steps(svm, unit=is_unit(svm))])


def _set_steps(svm: dict[str, Any], unit: bool) -> list[tuple[str, Any]]:
    """(select), standardise, (unit norm): what one set's columns go through."""
    from sklearn.preprocessing import StandardScaler

    steps: list[tuple[str, Any]] = []
    if svm.get("select_k", "all") != "all":
        steps.append(("select", AnovaSelect(int(svm["select_k"]))))
    steps.append(("scale", StandardScaler()))
    if unit:
        steps.append(("unit", UnitMeanSquare()))
    return steps


def fused_blocks(svm: dict[str, Any], blocks: Blocks):
    """Early fusion with every set weighed the same: each set's columns selected (at most
    ``select_k`` of that set's own), standardised and scaled to unit mean squared norm on
    the training rows, then multiplied by ``1/sqrt(n)``, so the fused rows have unit mean
    squared norm too and C and gamma keep their scale-free meaning. Always unit-norm per
    set, whatever ``scale`` says: without it the largest set would outweigh the others."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    bounds = np.cumsum([0, *(width for _, width in blocks)])
    parts = [
        (name, Pipeline(_set_steps(svm, unit=True)), slice(int(a), int(b)))
        for (name, _), a, b in zip(blocks, bounds[:-1], bounds[1:], strict=True)
    ]
    weight = 1.0 / np.sqrt(len(blocks))
    return ColumnTransformer(parts, transformer_weights={name: weight for name, _ in blocks})


def svc(svm: dict[str, Any], seed: int = 0, precomputed: bool = False):
    """The SVC of the merged ``[svm]`` settings (``kernel="precomputed"`` for the fast path)."""
    from sklearn.svm import SVC

    kernel = {"kernel": "precomputed"} if precomputed else _kernel_args(svm)
    return SVC(
        **kernel,
        C=float(svm["C"]),
        class_weight=None if svm.get("class_weight") == "none" else svm.get("class_weight"),
        cache_size=float(svm.get("cache_size", 1000.0)),
        max_iter=int(svm.get("max_iter", -1)),
        random_state=seed,
    )


def _kernel_args(svm: dict[str, Any]) -> dict[str, Any]:
    gamma = svm.get("gamma", "scale")
    return {
        "kernel": svm["kernel"],
        "gamma": gamma if isinstance(gamma, str) else float(gamma),
        "degree": int(svm.get("degree", 3)),
        "coef0": float(svm.get("coef0", 0.0)),
    }


def make_pipeline(svm: dict[str, Any], seed: int = 0, blocks: Blocks | None = None):
    """The whole pipeline of the merged ``[svm]`` settings of a study or an export (of a
    fused set's ``blocks``): what cross-validation fits and scores on each fold."""
    from sklearn.pipeline import Pipeline

    return Pipeline([*preprocessing(svm, blocks).steps, ("svc", svc(svm, seed))])


class SpeakerCalibrated(CalibratedClassifierCV):
    """``CalibratedClassifierCV(pipeline, cv=speaker folds, ensemble=False)`` whose
    ``predict`` is the pipeline's own: the SVC decision cross-validation scored, not the
    arg-max of the calibrated probabilities (the two differ on borderline clips).

    ``estimator_`` is the pipeline fitted on every clip; ``predict_proba`` applies Platt
    scaling fitted on its out-of-fold decision values, one speaker fold at a time, so no
    speaker's clips are on both sides of a calibration split."""

    def fit(self, X: np.ndarray, y: np.ndarray, **fit_params: Any) -> SpeakerCalibrated:
        if self.ensemble is not False or isinstance(self.cv, int) or self.cv is None:
            # An int would be clip-level stratified folds; an ensemble has no single decision.
            raise ValueError("SpeakerCalibrated needs cv = speaker folds and ensemble=False")
        super().fit(X, y, **fit_params)
        self.estimator_ = self.calibrated_classifiers_[0].estimator
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)


def calibrated_pipeline(
    svm: dict[str, Any],
    splits: list[tuple[np.ndarray, np.ndarray]],
    seed: int = 0,
    blocks: Blocks | None = None,
) -> SpeakerCalibrated:
    """The pipeline, with per-label probabilities calibrated on ``splits``: (train, valid)
    index pairs that keep each speaker on one side (the corpus's own speaker folds)."""
    pipeline = make_pipeline(svm, seed, blocks)
    return SpeakerCalibrated(pipeline, method="sigmoid", cv=splits, ensemble=False)


def absolute_params(svm: dict[str, Any], scale: float) -> dict[str, Any]:
    """``C`` and ``gamma`` for scikit-learn's plain ``StandardScaler`` + ``SVC`` that give the
    same model as ``svm``, whose unit-norm factor on the training rows is ``scale``
    (``UnitMeanSquare.scale_``, equal to scikit-learn's ``gamma="scale"`` there).

    Scaling features by ``sqrt(scale)`` multiplies the linear kernel by ``scale``: the SVM
    with kernel ``scale·K`` and penalty C is the one with kernel K and ``C·scale``.
    rbf, poly and sigmoid see ``gamma·scale`` on the standardised features and keep C."""
    gamma = svm.get("gamma", "scale")
    if not is_unit(svm):
        return {"C": float(svm["C"]), "gamma": gamma}
    # "scale" on unit-norm features is 1 ("auto" is refused with scale = "unit").
    relative = 1.0 if gamma == "scale" else float(gamma)
    linear = svm["kernel"] == "linear"
    return {"C": float(svm["C"]) * (scale if linear else 1.0), "gamma": relative * scale}
