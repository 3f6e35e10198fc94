"""The study file's sampler and pruner as Optuna objects."""

from __future__ import annotations

import secrets

import optuna

from hpo.config.study import StudySpec


def trial_seed(spec: StudySpec, n_trials: int) -> int:
    """The sampler seed of the next trial of a study that holds ``n_trials`` trials.

    Read under the lock every worker takes to create a trial (hpo.study.locks), the count
    differs for every new trial, on every worker and machine: workers started together never
    replay each other's random start-up points, as a seed per worker index did (worker i had
    the same seed on every machine). A study without a seed draws one; either way the trial
    records it (``sampler_seed``).
    """
    seed = spec.sampler.seed
    return seed + n_trials if seed is not None else secrets.randbits(31)


def build_sampler(spec: StudySpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The spec's sampler with ``seed`` (TPE keeps its history in the storage, so a new
    sampler per trial loses nothing)."""
    s = spec.sampler
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
