"""The ``svm`` objective: cached features → scaler + SVC, scored by actor cross-validation."""

from __future__ import annotations

import warnings

import numpy as np
import optuna

from hpo.corpus.manifest import Corpus
from hpo.cv import Fold, cross_validate, make_folds, report_mode
from hpo.metrics import fold_scores
from hpo.space import suggest
from hpo.spec import StudySpec
from hpo.svm.features import load_features
from hpo.svm.model import make_pipeline


class SvmObjective:
    """``trial -> mean CV score``; features are loaded (or computed and cached) once."""

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        self.spec = spec
        self.reporter = reporter
        self.X = load_features(corpus, spec.settings.features)
        self.y = np.array([c.emotion_id - 1 for c in corpus.clips])
        self.folds = make_folds(corpus, spec.data.folds)

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest(trial, self.spec.space)
        svm = self.spec.settings.merged(params)["svm"]
        if self.reporter:
            self.reporter.trial_started(trial.number, params, len(self.folds))

        def fit_and_score(fold: Fold) -> dict:
            pipe = make_pipeline(svm)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pipe.fit(self.X[fold.train], self.y[fold.train])
            if any("max_iter" in str(w.message) for w in caught):
                trial.set_user_attr("warning", "SVC stopped at max_iter before converging")
            pred = pipe.predict(self.X[fold.valid])
            return fold_scores(self.y[fold.valid], pred, n_classes=8)

        return cross_validate(
            trial,
            self.folds,
            fit_and_score,
            self.spec.objective.metric,
            report=report_mode(self.spec.pruner.type),
            on_fold=self.reporter.fold_done if self.reporter else None,
        )
