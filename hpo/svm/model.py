"""The SVM pipeline: standardise each feature, then an SVC."""

from __future__ import annotations

from typing import Any


def make_pipeline(svm: dict[str, Any], probability: bool = False, seed: int = 0):
    """A scikit-learn Pipeline from the merged ``[svm]`` settings of a study or an export."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svc = SVC(
        kernel=svm["kernel"],
        C=float(svm["C"]),
        gamma=svm.get("gamma", "scale"),
        degree=int(svm.get("degree", 3)),
        coef0=float(svm.get("coef0", 0.0)),
        class_weight=None if svm.get("class_weight") == "none" else svm.get("class_weight"),
        cache_size=float(svm.get("cache_size", 1000.0)),
        max_iter=int(svm.get("max_iter", -1)),
        random_state=seed,
    )
    if probability:
        from sklearn.calibration import CalibratedClassifierCV

        # Platt scaling fitted on internal cross-validation, then one SVC on all the data
        # (what SVC(probability=True) did before scikit-learn deprecated it).
        svc = CalibratedClassifierCV(svc, ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("svc", svc)])
