"""The study file format (``studies/NAME.toml``): read, validate, hash.

A study file holds the whole study: data, folds, objective, sampler, pruner, budget, the
search space and the settings of its kind (``svm`` or ``w2v``). Nothing about a study is
hard-coded in Python.

This module validates the sections every study has; a kind's own sections are validated
by that kind's settings module, which the caller passes in (config sits below the kinds,
so it never looks them up itself). ``hpo.kinds.load_spec`` does both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from hpo.config.paths import known_studies, resolve_study_path
from hpo.config.space import Param, parse_space
from hpo.config.tables import build
from hpo.errors import SpecError


@dataclass(frozen=True)
class DataSpec:
    corpus: str = "data/ravdess"
    # Must match the folds the corpus was prepared with (hpo data prepare --folds): K speaker
    # folds, "loso" (leave one speaker out), or "file" (a published split: --folds-from, or
    # a CSV corpus's fold column). Nested CV applies the same rule inside (for "file": K-1
    # gender-balanced folds, as a table cannot split the training speakers).
    folds: int | Literal["loso", "file"] = 6

    def check(self, where: str) -> None:
        if isinstance(self.folds, int) and self.folds < 2:
            raise SpecError(f"{where}: 'folds' must be at least 2, got {self.folds}")


@dataclass(frozen=True)
class ObjectiveSpec:
    metric: Literal["accuracy", "uar", "macro_f1"] = "accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"

    def check(self, where: str) -> None:
        # Every metric hpo computes is better when higher: "minimize" would search for the
        # worst configuration and still call it the best.
        if self.direction != "maximize":
            raise SpecError(
                f"{where}: 'direction' = {self.direction!r}, but {self.metric} is better when "
                'higher; use "maximize" (or leave the key out)'
            )


@dataclass(frozen=True)
class SamplerSpec:
    type: Literal["tpe", "random"] = "tpe"
    seed: int | None = 0
    n_startup_trials: int = 10

    def check(self, where: str) -> None:
        if self.n_startup_trials < 0:
            raise SpecError(f"{where}: 'n_startup_trials' must be >= 0")

    multivariate: bool = True
    # Needed with multivariate TPE when parameters are conditional (gamma only for rbf...).
    group: bool = True
    # Parallel workers: pretend running trials scored badly so others look elsewhere.
    constant_liar: bool = True


@dataclass(frozen=True)
class PrunerSpec:
    type: Literal["none", "median", "wilcoxon"] = "wilcoxon"
    p_threshold: float = 0.1
    n_startup_steps: int = 2
    n_startup_trials: int = 5
    # Epoch-level screening on the first fold (w2v; see hpo.trial.screening).
    epoch_stage: bool = False
    screen_fold: int = 0
    # No verdict on a first epoch: it mostly measures the searched warm-up, not the trial.
    epoch_warmup: int = 2
    epoch_percentile: float = 50.0
    epoch_startup_trials: int = 4

    def check(self, where: str) -> None:
        if not 0 < self.p_threshold < 1:
            raise SpecError(f"{where}: 'p_threshold' must be between 0 and 1")
        if not 0 < self.epoch_percentile < 100 or self.epoch_warmup < 1:
            raise SpecError(f"{where}: needs 0 < epoch_percentile < 100 and epoch_warmup >= 1")
        if self.screen_fold < 0 or self.epoch_startup_trials < 1:
            raise SpecError(f"{where}: needs screen_fold >= 0 and epoch_startup_trials >= 1")
        if self.n_startup_steps < 0 or self.n_startup_trials < 0:
            raise SpecError(f"{where}: 'n_startup_steps' and 'n_startup_trials' must be >= 0")

    def check_folds(self, n_folds: int, where: str) -> None:
        """``screen_fold`` names one of ``n_folds`` folds: one past them would leave the epoch
        stage silently doing nothing."""
        if self.screen_fold >= n_folds:
            raise SpecError(
                f"{where}: 'screen_fold' = {self.screen_fold}, but there are {n_folds} folds "
                f"(numbered 0 to {n_folds - 1}); use one of them (0 is the default)"
            )

    def check_reachable(self, n_folds: int, where: str) -> None:
        """A Wilcoxon pruner that the file's own ``folds`` leave no chance to fire.

        Optuna's WilcoxonPruner runs scipy's exact one-sided test: on k folds, all worse than
        the best trial's, p = 1/2^k, its smallest (3 folds 0.125, 4 0.0625, 5 0.031), and it
        stops a trial only when p < p_threshold, from max(2, n_startup_steps) folds on, never
        after the last one: with K folds only p_threshold > 1/2^(K-1) and n_startup_steps < K
        can ever stop a trial. Two folds leave nothing to pair: the pruner is moot there,
        not mistaken; and loso or nested inner folds are the corpus's, not the file's."""
        if self.type != "wilcoxon" or n_folds < 3:
            return
        smallest = 0.5 ** (n_folds - 1)
        if self.n_startup_steps >= n_folds:
            raise SpecError(
                f"{where}: 'n_startup_steps' = {self.n_startup_steps}: with {n_folds} folds "
                f"the Wilcoxon pruner can never stop a trial; use {n_folds - 1} or fewer"
            )
        if self.p_threshold <= smallest:
            raise SpecError(
                f"{where}: 'p_threshold' = {self.p_threshold:g} can never stop a trial: with "
                f"{n_folds} folds the Wilcoxon test's p stays >= {smallest:g} before the last "
                f'fold; set p_threshold above {smallest:g}, or type = "none"'
            )


@dataclass(frozen=True)
class BudgetSpec:
    n_trials: int = 100
    timeout: float | None = None

    def check(self, where: str) -> None:
        if self.n_trials < 1:
            raise SpecError(f"{where}: 'n_trials' must be at least 1")
        if self.timeout is not None and self.timeout <= 0:
            raise SpecError(f"{where}: 'timeout' must be positive")


@dataclass(frozen=True)
class RunSpec:
    """Crash safety: a trial whose heartbeat stops for ``grace_period`` s is failed and retried."""

    heartbeat_interval: int = 30
    grace_period: int = 120
    max_retry: int = 3
    # The dashboard's figures (artifact store): a folder every worker and the dashboard's
    # host can read. Needed with PostgreSQL; beside the SQLite file by default.
    artifacts: str | None = None

    def check(self, where: str) -> None:
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            raise SpecError(
                f"{where}: needs heartbeat_interval >= 1 and grace_period > heartbeat_interval"
            )
        if self.max_retry < 0:
            raise SpecError(f"{where}: 'max_retry' must be >= 0")


@dataclass(frozen=True)
class StudySpec:
    """A validated study file."""

    name: str
    kind: str  # a name in the kind registry (hpo.kinds)
    path: Path
    description: str
    data: DataSpec
    objective: ObjectiveSpec
    sampler: SamplerSpec
    pruner: PrunerSpec
    budget: BudgetSpec
    run: RunSpec
    space: tuple[Param, ...]
    settings: Any  # the kind's Settings dataclass
    raw: dict[str, Any]

    @property
    def hash(self) -> str:
        """Hash of everything that changes what a trial's value means (``spec_hash``)."""
        return spec_hash(self.raw, getattr(self.settings, "OPERATIONAL", {}))

    def with_overrides(self, **changes: Any) -> StudySpec:
        """A copy with settings replaced (CLI flags such as --data or --model)."""
        raw = json.loads(json.dumps(self.raw))
        data = self.data
        settings = self.settings
        for key, value in changes.items():
            if value is None:
                continue
            if key == "corpus":
                data = dataclasses.replace(data, corpus=str(value))
                raw.setdefault("data", {})["corpus"] = str(value)
            elif key == "model":
                settings = dataclasses.replace(
                    settings, model=dataclasses.replace(settings.model, name=str(value))
                )
                raw.setdefault("model", {})["name"] = str(value)
            else:
                raise ValueError(key)
        return dataclasses.replace(self, data=data, settings=settings, raw=raw)


# Sections that never change what a trial's value means: more trials, another timeout,
# other crash-safety timings or words continue the same study.
_NOT_HASHED = ("budget", "run", "description")


def result_settings(raw: dict[str, Any], operational: Mapping[str, tuple[str, ...]]) -> dict:
    """The parts of a parsed study file that a trial's value depends on.

    Left out: the sections in ``_NOT_HASHED``, the corpus *path* (the same corpus mounted
    elsewhere, on another worker machine, is the same study: its content is checked through
    the manifest hash), and the kind's ``operational`` keys (logging, caches, loader
    processes: how fast and how visibly trials run, not what they score).
    """
    keep = {k: v for k, v in raw.items() if k not in _NOT_HASHED}
    skip = {"data": ("corpus",), **operational}
    for section, keys in skip.items():
        if isinstance(keep.get(section), dict):
            keep[section] = {k: v for k, v in keep[section].items() if k not in keys}
    return keep


def spec_hash(raw: dict[str, Any], operational: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """Hash of ``result_settings``; computed again from a stored study's own ``spec`` when
    it resumes, so a change of what is hashed never turns an old study into a changed one."""
    blob = json.dumps(result_settings(raw, operational or {}), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


_COMMON = {
    "name",
    "kind",
    "description",
    "data",
    "objective",
    "sampler",
    "pruner",
    "budget",
    "run",
    "space",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class KindSettings(Protocol):
    """What validating a study file needs from its kind: the kind's settings module."""

    #: The kind's own TOML tables.
    SECTIONS: tuple[str, ...]
    #: Dataclass built from those tables: ``Settings.from_tables(raw, where)``.
    Settings: Any

    def check_space(self, space: tuple[Param, ...], where: str) -> None: ...


def read_study_file(study: str | Path) -> tuple[dict[str, Any], Path]:
    """The parsed TOML of a study (a name or a path) and its file; SpecError when missing
    or not TOML."""
    path = resolve_study_path(str(study))
    if not path.is_file():
        raise SpecError(
            f"{path}: no such study file (known studies: {', '.join(known_studies())}; "
            "or give a path to a .toml file)"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read ({e})") from None
    return raw, path


def spec_from_dict(
    raw: dict[str, Any], path: Path, kinds: Mapping[str, Callable[[], KindSettings]]
) -> StudySpec:
    """Validate a parsed study file; ``path`` names it in errors.

    Args:
        raw: the parsed TOML.
        path: the file it came from (named in errors; its stem is the default name).
        kinds: kind name -> loader of that kind's settings module (``hpo.kinds`` builds it).
    """
    where = str(path)
    kind = raw.get("kind")
    if kind not in kinds:
        raise SpecError(f"{where}: 'kind' must be one of {', '.join(kinds)}, got {kind!r}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}: 'name' must be letters, digits, '-', '_' or '.', got {name!r}")
    settings_mod = kinds[kind]()
    sections = set(settings_mod.SECTIONS)
    for key in raw:
        if key not in _COMMON | sections:
            known = ", ".join(sorted(_COMMON | sections))
            raise SpecError(f"{where}: unknown key '{key}' (known: {known})")
    space = parse_space(raw.get("space"), where)
    settings = settings_mod.Settings.from_tables(raw, where)
    settings_mod.check_space(space, where)
    data = build(DataSpec, raw.get("data"), f"{where}: [data]")
    pruner = build(PrunerSpec, raw.get("pruner"), f"{where}: [pruner]")
    if isinstance(data.folds, int):  # "loso": the corpus's speakers decide (hpo run checks)
        pruner.check_folds(data.folds, f"{where}: [pruner]")
        pruner.check_reachable(data.folds, f"{where}: [pruner]")
    return StudySpec(
        name=name,
        kind=kind,
        path=path,
        description=str(raw.get("description", "")),
        data=data,
        objective=build(ObjectiveSpec, raw.get("objective"), f"{where}: [objective]"),
        sampler=build(SamplerSpec, raw.get("sampler"), f"{where}: [sampler]"),
        pruner=pruner,
        budget=build(BudgetSpec, raw.get("budget"), f"{where}: [budget]"),
        run=build(RunSpec, raw.get("run"), f"{where}: [run]"),
        space=space,
        settings=settings,
        raw=raw,
    )
