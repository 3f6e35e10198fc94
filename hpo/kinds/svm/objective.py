"""The ``svm`` objective: cached features → scaler + SVC, scored by actor cross-validation."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
from sklearn.exceptions import ConvergenceWarning

from hpo.config.study import StudySpec
from hpo.corpus.folds import Fold, corpus_folds
from hpo.corpus.manifest import Corpus
from hpo.kinds.svm.features import corpus_features
from hpo.kinds.svm.model import make_pipeline
from hpo.study.cv import CvObjective, FoldFn
from hpo.study.metrics import fold_scores


class SvmObjective(CvObjective):
    """``trial -> mean CV score``; features are loaded (or computed and cached) once."""

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        self.spec = spec
        self.reporter = reporter
        self.X = corpus_features(corpus, spec.settings.features)
        self.y = np.array([c.emotion_id - 1 for c in corpus.clips])
        self.folds = corpus_folds(corpus, spec.data.folds)

    def fold_fn(self, trial: optuna.Trial, params: dict) -> FoldFn:
        svm = self.spec.settings.merged(params)["svm"]

        def fit_and_score(fold: Fold) -> dict:
            pipe = make_pipeline(svm)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                pipe.fit(self.X[fold.train], self.y[fold.train])
            if any(issubclass(w.category, ConvergenceWarning) for w in caught):
                trial.set_user_attr("warning", "SVC stopped at max_iter before converging")
            pred = pipe.predict(self.X[fold.valid])
            return fold_scores(self.y[fold.valid], pred, n_classes=8)

        return fit_and_score
