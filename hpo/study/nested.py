"""``hpo nested``: an honest estimate of a whole search, by nested speaker cross-validation.

The best of a study's trials is optimistic: the search has seen every validation fold. Here,
for each outer fold (the corpus's own folds), the whole search runs again on the other
speakers only (an inner study, ``NAME.nested-K`` in the same storage, scored by inner K-1
fold CV over those speakers with the same gender-balanced rule, or leave-one-speaker-out
when the corpus's rule is loso), and only the configuration it picks is trained on those
speakers and scored on the held-out ones. The mean of those outer scores estimates what the
search itself achieves on new speakers.

Inner studies resume like any study; an outer score is stored on its inner study with the
trial it came from, so an interrupted run redoes only what is missing. It works for every
kind: the kind's own objective runs with other folds. The outer refit is one fold trained in
full: no pruner and no epoch stage judge it (both compare with the inner trials).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import optuna

from hpo.config.study import StudySpec
from hpo.corpus.folds import LOSO, Fold, FoldRule, assign_folds, corpus_folds, split_by_fold
from hpo.corpus.manifest import Corpus, load_corpus
from hpo.errors import HpoError
from hpo.kinds import get_kind
from hpo.study.open import open_study
from hpo.study.storage import load_study, open_storage
from hpo.study.worker import best_of, run_worker
from hpo.trial.metrics import METRICS
from hpo.util.progress import TrialReporter


def inner_folds(corpus: Corpus, outer: Fold, n_inner: FoldRule) -> list[Fold]:
    """The outer fold's training speakers split by the same rule (``n_inner`` gender-balanced
    folds, or ``"loso"``; over the corpus's groups when it has them); indices into corpus."""
    actors = corpus.speakers
    keep = outer.train
    genders, groups = corpus.speaker_genders, corpus.speaker_groups
    fold_of = assign_folds(outer.train_actors, n_inner, genders, groups)
    inner = split_by_fold(actors[keep], np.array([fold_of[a] for a in actors[keep]]))
    # Back to indices of the whole corpus, so the kind's objective reads the right clips.
    return [dataclasses.replace(f, train=keep[f.train], valid=keep[f.valid]) for f in inner]


def _outer_score(study: optuna.Study, objective: Any, outer: Fold, metric: str) -> dict:
    best = study.best_trial
    done = study.user_attrs.get("outer")
    if done and done["trial"] == best.number:
        return done
    scores = _refit(objective, best, outer)
    result = {
        "fold": outer.index,
        "actors": list(outer.valid_actors),
        "score": scores[metric],
        "scores": {k: scores[k] for k in METRICS},
        "params": best.params,
        "inner_value": best.value,
        "trial": best.number,
    }
    study.set_user_attr("outer", result)
    return result


def _refit(objective: Any, best: optuna.trial.FrozenTrial, outer: Fold) -> dict:
    """Train the chosen configuration on the inner speakers, score it on the held-out ones.

    A ``FixedTrial`` belongs to no study: nothing prunes or screens the refit (the epoch
    stage would judge it against the inner trials' curves), it trains every epoch."""
    from hpo.trial.cv import Retryable

    trial = optuna.trial.FixedTrial(best.params, number=best.number)
    try:
        return objective.fold_fn(trial, best.params)(outer)
    except Retryable as e:
        raise HpoError(
            f"outer fold {outer.index}: {e}; run `hpo nested` again, it resumes here"
        ) from None
    except optuna.TrialPruned as e:
        raise HpoError(
            f"outer fold {outer.index}: trial {best.number}'s configuration, trained on all "
            f"inner speakers, stopped early ({e}); its outer score cannot be measured"
        ) from None


def run_nested(
    spec: StudySpec, storage_url: str, inner_trials: int | None = None, reporter=None
) -> dict[str, Any]:
    """Run (or resume) the nested cross-validation of ``spec``; one JSON-ready summary."""
    n_trials = inner_trials or spec.budget.n_trials
    if n_trials < 1:
        raise HpoError("--inner-trials must be at least 1")
    corpus = load_corpus(spec.data.corpus)
    kind = get_kind(spec.kind)
    kind.check(spec)
    outer_folds = corpus_folds(corpus, spec.data.folds)
    if len(outer_folds) < 3:
        raise HpoError("nested cross-validation needs at least 3 outer folds")
    # Inside an outer fold, the same rule: K-1 folds (4 actors each on RAVDESS), or loso.
    # A published split ("file") cannot split the training speakers: K-1 gender-balanced.
    inner_rule = LOSO if spec.data.folds == LOSO else len(outer_folds) - 1
    # Inner studies have one fold fewer than the corpus (K-1 folds, or one speaker fewer).
    spec.pruner.check_folds(len(outer_folds) - 1, f"{spec.path}: [pruner] (nested, inner)")
    metric = spec.objective.metric
    reporter = reporter or TrialReporter(n_trials, 0, metric)
    kind.prepare(spec, corpus, reporter)
    objective = kind.objective(spec, corpus, reporter)
    tb_base = getattr(objective, "tb_root", None)  # TensorBoard: per inner study, not mixed
    outer = []
    for of in outer_folds:
        inner_spec = dataclasses.replace(spec, name=f"{spec.name}.nested-{of.index}")
        folds = inner_folds(corpus, of, inner_rule)
        study = open_study(inner_spec, storage_url, corpus, folds=folds)
        study.set_user_attr("nested_outer_fold", of.index)
        study.set_user_attr("inner_fold_rule", inner_rule)
        study.set_user_attr("outer_valid_actors", list(of.valid_actors))
        study.set_user_attr(
            "inner_fold_actors", {str(f.index): list(f.valid_actors) for f in folds}
        )
        reporter.log(
            f"outer fold {of.index} (speakers {', '.join(map(str, of.valid_actors))} held out): "
            f"inner study {inner_spec.name}, {n_trials} trials on {len(of.train_actors)} speakers"
        )
        objective.folds = folds
        if tb_base is not None:
            objective.tb_root = tb_base.parent / inner_spec.name
        run_worker(inner_spec, storage_url, n_trials, None, 0, reporter, corpus, objective)
        study = load_study(open_storage(storage_url, create=False), inner_spec.name)
        if best_of(study) is None:
            raise HpoError(f"inner study {inner_spec.name} has no complete trial")
        if tb_base is not None:  # not into the chosen inner trial's own folder
            objective.tb_root = tb_base.parent / inner_spec.name / "outer"
        result = _outer_score(study, objective, of, metric)
        reporter.log(
            f"outer fold {of.index}: {metric} {result['score']:.4f} with {result['params']}"
        )
        outer.append(result)
    scores = [r["score"] for r in outer]
    summary: dict[str, Any] = {
        "study": spec.name,
        "metric": metric,
        "inner_trials": n_trials,
        "estimate": float(np.mean(scores)),
        "std": sample_std(scores),
        "outer": outer,
        "synthetic_corpus": corpus.synthetic,
    }
    plain = _plain_best(storage_url, spec.name)
    summary["plain_best"] = plain
    summary["optimism"] = None if plain is None else plain - summary["estimate"]
    return summary


def _plain_best(storage_url: str, name: str) -> float | None:
    storage = open_storage(storage_url, create=False)
    if name not in {s.study_name for s in storage.get_all_studies()}:
        return None
    best = best_of(optuna.load_study(study_name=name, storage=storage))
    return None if best is None else best.value


def nested_summary(storage_url: str, name: str) -> dict[str, Any] | None:
    """The outer scores already stored for ``name`` (for reports), or None."""
    storage = open_storage(storage_url, create=False)
    outer = []
    for s in storage.get_all_studies():
        if s.study_name.startswith(f"{name}.nested-") and "outer" in s.user_attrs:
            outer.append(s.user_attrs["outer"])
    if not outer:
        return None
    scores = [r["score"] for r in outer]
    return {"folds": len(outer), "estimate": float(np.mean(scores)), "std": sample_std(scores)}


def sample_std(values: list[float]) -> float | None:
    """The sample standard deviation (ddof=1) over outer folds: they are a sample of the
    speakers the estimate is about; None for fewer than two."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None
