"""``hpo rerun``: the chosen configuration trained again on every fold with new seeds.

A trial's score comes from one seed per fold, and the best trial is the one whose seeds
happened to help as well: a reviewer asks for the chosen configuration re-run with several
seeds. Seed 0 is the trial's own seed, trained again as a check that the same configuration
is retrained (its fold scores should equal the trial's); seeds 1..N are new, and only they
enter the summary (the trial's own seed is the one the search selected on).

How a seed enters a kind: a kind whose settings have ``[training] seed`` (w2v: every fold
trains with ``seed + fold index``) gets ``seed + SEED_STRIDE * k``; otherwise the
objective's ``seed`` attribute (the SVM's SVC ``random_state``) is set to that. The
configuration is scored like nested CV's outer refit: ``objective.fold_fn`` on an
``optuna.trial.FixedTrial``, so no pruner or epoch stage judges it.

Results live on the study as the user attribute ``reruns`` (``{trial: {"params", "seeds":
{k: {"seed", "scores": {metric: per-fold list}}}}}``), written after every fold: an
interrupted rerun resumes, and seeds already done are not redone. One ``hpo rerun`` of a
study at a time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.corpus.folds import Fold, corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.errors import HpoError
from hpo.kinds import get_kind, stored_spec
from hpo.study.storage import load_study, open_storage, pick_trial
from hpo.trial.metrics import METRICS
from hpo.util.progress import TrialReporter

ATTR = "reruns"
# Seed k's fold seeds (seed + fold index, for w2v) never meet another seed's.
SEED_STRIDE = 1000
LEVEL = 0.95


def _pick(study: optuna.Study, number: int | None) -> FrozenTrial:
    if number is None and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise HpoError(f"study '{study.study_name}' has no complete trial to rerun")
    why = "only a complete trial, scored on every fold, can be rerun"
    return pick_trial(study, number, (TrialState.COMPLETE,), why)


def _seeder(objective: Any, spec: Any):
    """``set(k) -> seed``: makes ``objective`` train with seed k (k = 0: the study's own)."""
    training = getattr(spec.settings, "training", None)
    if training is not None and hasattr(training, "seed"):

        def set_training_seed(k: int) -> int:
            seed = training.seed + SEED_STRIDE * k
            settings = dataclasses.replace(
                spec.settings, training=dataclasses.replace(training, seed=seed)
            )
            objective.spec = dataclasses.replace(spec, settings=settings)
            return seed

        return set_training_seed
    if hasattr(objective, "seed"):
        base = objective.seed

        def set_objective_seed(k: int) -> int:
            objective.seed = base + SEED_STRIDE * k
            return objective.seed

        return set_objective_seed
    raise HpoError(f"kind {spec.kind} has no seed that hpo rerun can change")


def _study_folds(attrs: dict[str, Any], corpus: Any, rule: Any, name: str) -> list[Fold]:
    folds = corpus_folds(corpus, rule)
    if attrs.get("manifest_hash") and attrs["manifest_hash"] != corpus.manifest_hash:
        raise HpoError(
            f"study '{name}' ran on corpus manifest {attrs['manifest_hash']}, {corpus.root} has "
            f"{corpus.manifest_hash}; pass --data DIR with the study's corpus"
        )
    ours = {str(f.index): list(f.valid_actors) for f in folds}
    if attrs.get("fold_actors") and attrs["fold_actors"] != ours:
        raise HpoError(
            f"study '{name}' was scored on other folds than the corpus's own (a nested inner "
            "study?): rerun the plain study"
        )
    return folds


def _score(objective: Any, trial: FrozenTrial, fold: Fold, k: int) -> dict[str, float]:
    from hpo.trial.cv import Retryable

    fixed = optuna.trial.FixedTrial(trial.params, number=trial.number)
    try:
        scores = objective.fold_fn(fixed, trial.params)(fold)
    except Retryable as e:
        raise HpoError(
            f"seed {k}, fold {fold.index}: {e}; run hpo rerun again: it resumes"
        ) from None
    except optuna.TrialPruned as e:
        raise HpoError(f"seed {k}, fold {fold.index}: training stopped early ({e})") from None
    # Rounded as cross-validation stores fold scores, so seed 0 compares exactly.
    return {m: round(float(scores[m]), 6) for m in METRICS}


def run_rerun(
    storage_url: str,
    name: str,
    seeds: int,
    trial: int | None = None,
    data: Path | None = None,
    reporter: Any = None,
) -> dict[str, Any]:
    """Train trial ``trial`` (default: the best) of study ``name`` on every fold with its own
    seed and ``seeds`` new ones, resuming what is stored; return :func:`rerun_summary`."""
    if seeds < 1:
        raise HpoError("--seeds must be at least 1")
    study = load_study(open_storage(storage_url, create=False), name)
    t = _pick(study, trial)
    attrs = study.user_attrs
    spec = stored_spec(attrs["spec"], name)
    spec = spec.with_overrides(corpus=data or attrs.get("corpus_path"))
    corpus = load_corpus(spec.data.corpus)
    folds = _study_folds(attrs, corpus, spec.data.folds, name)
    runs = dict(attrs.get(ATTR) or {})
    entry = runs.setdefault(str(t.number), {"trial": t.number, "params": t.params, "seeds": {}})
    todo = [k for k in range(seeds + 1) if not _done(entry["seeds"].get(str(k)))]
    if todo:
        reporter = reporter or TrialReporter(len(todo), 0, spec.objective.metric)
        kind = get_kind(spec.kind)
        kind.check(spec)
        kind.prepare(spec, corpus, reporter)
        objective = kind.objective(spec, corpus, reporter)
        if getattr(objective, "tb_root", None) is not None:  # not into the trial's own logs
            objective.tb_root = objective.tb_root.parent / f"{name}.rerun-{t.number}"
        set_seed = _seeder(objective, spec)
        for k in todo:
            seed = set_seed(k)
            run = entry["seeds"].setdefault(str(k), {"seed": seed, "scores": {}})
            for fold in folds:
                if not _fold_done(run, fold.index):
                    scores = _score(objective, t, fold, k)
                    for m in METRICS:
                        run["scores"].setdefault(m, [None] * len(folds))[fold.index] = scores[m]
                    study.set_user_attr(ATTR, runs)  # after every fold: a resume loses none
            metric = spec.objective.metric
            reporter.log(f"seed {k} ({run['seed']}): {metric} {np.mean(run['scores'][metric]):.4f}")
    return rerun_summary(entry, t, spec.objective.metric)


def _fold_done(run: dict, index: int) -> bool:
    v = run["scores"]
    return set(v) == set(METRICS) and all(v[m][index] is not None for m in METRICS)


def _done(run: dict | None) -> bool:
    """Every fold of every metric scored."""
    if not run or set(run["scores"]) != set(METRICS):
        return False
    return all(None not in v for v in run["scores"].values())


def seed_stats(per_seed: list[list[float]]) -> dict[str, Any]:
    """Mean ± 95% interval over seeds and folds, from ``per_seed`` (one list of fold scores
    per seed): ``mean`` of the per-seed CV means; ``ci``: Student's t-interval over those
    means (mean ± t(0.975, n-1) · sd/√n, sd with ddof=1; None for one seed), which is about
    the seed-to-seed variation of this configuration's CV mean on these folds, not about new
    speakers; ``sd_all``: the sample sd (ddof=1) over every seed × fold score, which mixes
    fold and seed variation."""
    from scipy import stats

    means = np.array([np.mean(s) for s in per_seed])
    flat = np.concatenate([np.asarray(s, dtype=float) for s in per_seed])
    n = len(means)
    ci = None
    if n > 1:
        half = stats.t.ppf(0.5 + LEVEL / 2, n - 1) * np.std(means, ddof=1) / np.sqrt(n)
        ci = (float(means.mean() - half), float(means.mean() + half))
    return {
        "seeds": n,
        "mean": float(means.mean()),
        "sd_seeds": float(np.std(means, ddof=1)) if n > 1 else None,
        "ci": ci,
        "mean_all": float(flat.mean()),
        "sd_all": float(np.std(flat, ddof=1)) if len(flat) > 1 else None,
        "scores": int(len(flat)),
    }


def rerun_summary(entry: dict[str, Any], trial: FrozenTrial | None, metric: str) -> dict:
    """JSON-ready: per-seed CV means, :func:`seed_stats` of the new seeds (1..N) per metric,
    whether seed 0 reproduced ``trial``'s own fold scores (None when unknown), and whether
    every seed gave the same scores (training deterministic here: seeds add no variance)."""
    runs = {int(k): r for k, r in entry["seeds"].items() if _done(r)}
    new = [runs[k]["scores"] for k in sorted(runs) if k > 0]
    reproduced = None
    if 0 in runs and trial is not None:
        own = {m: trial.user_attrs.get(f"fold_{m}") for m in METRICS}
        reproduced = runs[0]["scores"] == own
    return {
        "trial": entry["trial"],
        "params": entry["params"],
        "metric": metric,
        "seeds": [
            {
                "index": k,
                "seed": r["seed"],
                "fold_scores": r["scores"],
                "cv_mean": {m: float(np.mean(r["scores"][m])) for m in METRICS},
            }
            for k, r in sorted(runs.items())
        ],
        "stats": {m: seed_stats([s[m] for s in new]) for m in METRICS} if new else None,
        "original_reproduced": reproduced,
        "identical": len(runs) > 1 and all(r["scores"] == new[0] for r in runs.values()),
        "interval": (
            f"{LEVEL:.0%} Student t-interval over the per-seed CV means of the new seeds "
            "(seed 0, the trial's own, left out: the search selected on it)"
        ),
    }


def stored_reruns(attrs: dict[str, Any], study: optuna.Study | None = None) -> list[dict]:
    """Every stored rerun of a study (for the report), as :func:`rerun_summary`."""
    metric = attrs.get("metric", "accuracy")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)} if study else {}
    out = []
    for key, entry in sorted((attrs.get(ATTR) or {}).items(), key=lambda kv: int(kv[0])):
        s = rerun_summary(entry, trials.get(int(key)), metric)
        if s["seeds"]:
            out.append(s)
    return out
