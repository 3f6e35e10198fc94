"""The study file's sampler and pruner as Optuna objects."""

from __future__ import annotations

import optuna

from hpo.config.study import StudySpec


def build_sampler(spec: StudySpec, offset: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler; the seed is offset by the trials so far and the worker index, so a
    resumed or parallel run never replays the same random start-up points."""
    s = spec.sampler
    seed = None if s.seed is None else s.seed + offset
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=s.n_startup_trials,
        multivariate=s.multivariate,
        group=s.group,
        constant_liar=s.constant_liar,
    )


def build_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.type == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(
            p_threshold=p.p_threshold, n_startup_steps=p.n_startup_steps
        )
    if p.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_startup_steps
        )
    return optuna.pruners.NopPruner()
