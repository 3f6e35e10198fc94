"""The ``svm`` objective: cached features → the SVM pipeline, scored by speaker cross-validation.

Features of every feature variant the space can pick are loaded once; per variant and fold
the pipeline's preprocessing is fitted on the fold's training clips and its Gram matrices
built on first use (``kernels.py``), so a trial only evaluates a kernel function and fits
the SVC. A fused set's Gram matrices are the mean of its sets' own (``fused_gram``): each
set's are built once and shared by every combination that includes it.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import optuna
from sklearn.exceptions import ConvergenceWarning

from hpo.config.study import StudySpec
from hpo.corpus.folds import Fold, corpus_folds
from hpo.corpus.manifest import Corpus
from hpo.kinds.speaker_norm import corpus_groups
from hpo.kinds.svm.config import FeatureSettings
from hpo.kinds.svm.features import load_features, normalised
from hpo.kinds.svm.kernels import FoldGram, fold_gram, fused_gram, kernels, precomputed_svc
from hpo.kinds.svm.pipeline import is_unit
from hpo.trial.cv import CvObjective, FoldFn
from hpo.trial.metrics import fold_scores

# Fold layouts x preprocessing variants kept (each ~12 MB on RAVDESS): the shipped study's
# 6 folds x 12 variants (3 sets x 3 speaker_norm modes, and ComParE's select_k) fit; nested
# CV's inner layouts are computed again when evicted.
MAX_GRAMS = 72


class SvmObjective(CvObjective):
    """``trial -> mean CV score``; features are loaded (or computed and cached) once."""

    # The SVC's random_state (hpo rerun changes it). scikit-learn's SVC draws random numbers
    # only for probability estimates, which cross-validation does not fit: with the same
    # folds every seed scores the same.
    seed: int = 0

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        self.spec = spec
        self.reporter = reporter
        self.corpus = corpus
        self.raw = {
            s.set: load_features(corpus, s) for s in spec.settings.feature_variants(spec.space)
        }
        self.y = corpus.label_ids
        self.n_classes = len(corpus.labels)
        self.folds = corpus_folds(corpus, spec.data.folds)
        self._grams: OrderedDict[tuple, FoldGram] = OrderedDict()
        self._normalised: dict[tuple, np.ndarray] = {}
        for n in spec.settings.norm_variants(spec.space):
            # A speaker too small for a searched enrolment rule: refused now, not in trial 7.
            corpus_groups(n, corpus)

    def features(self, s: FeatureSettings) -> np.ndarray:
        if not s.norm.on:
            return self.raw[s.set]
        # Normalised once per set and mode (a second on ComParE), not once per fold's Gram
        # matrices: a speaker's statistics come from its own clips, the same in every fold.
        key = (s.set, s.norm)
        if key not in self._normalised:
            self._normalised[key] = normalised(self.raw[s.set], self.corpus, s)
        return self._normalised[key]

    def gram(self, s: FeatureSettings, fold: Fold, svm: dict) -> FoldGram:
        if len(s.sets) > 1:
            # A mean of cached matrices, cheap beside the SVC's fit: not cached itself, so
            # the combinations take no room from the sets' own.
            return fused_gram(
                [self.gram(s.part(name), fold, {**svm, "scale": "unit"}) for name in s.sets]
            )
        # A k at or above the set's size keeps every feature (as the pipeline's step does):
        # one Gram matrix for both, not two.
        k = svm.get("select_k", "all")
        if k != "all" and k >= self.raw[s.set].shape[1]:
            svm = {**svm, "select_k": "all"}
        # Everything the preprocessing depends on; a trial's kernel, C and gamma are not.
        prep = (s.set, s.norm, is_unit(svm), svm.get("select_k", "all"))
        key = (*prep, fold.train.tobytes(), fold.valid.tobytes())
        if key not in self._grams:
            self._grams[key] = fold_gram(self.features(s), self.y, fold, svm)
            if len(self._grams) > MAX_GRAMS:  # nested CV visits many fold layouts
                self._grams.popitem(last=False)
        self._grams.move_to_end(key)
        return self._grams[key]

    def fold_fn(self, trial: optuna.Trial, params: dict) -> FoldFn:
        merged = self.spec.settings.merged(params)
        svm, s = merged["svm"], FeatureSettings(**merged["features"])
        # Disclosed on the trial, whether searched or fixed: what its statistics came from.
        trial.set_user_attr("speaker_norm", s.norm.short())

        def fit_and_score(fold: Fold) -> dict:
            k_train, k_valid = kernels(svm, self.gram(s, fold, svm))
            svc = precomputed_svc(svm, self.seed)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                svc.fit(k_train, self.y[fold.train])
            if any(issubclass(w.category, ConvergenceWarning) for w in caught):
                trial.set_user_attr("warning", "SVC stopped at max_iter before converging")
            return fold_scores(self.y[fold.valid], svc.predict(k_valid), n_classes=self.n_classes)

        return fit_and_score
