"""The study file format (``studies/NAME.toml``): load, validate, hash.

A study file holds the whole study: data, folds, objective, sampler, pruner, budget, the
search space and the settings of its kind (``svm`` or ``w2v``). Nothing about a study is
hard-coded in Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hpo.errors import SpecError
from hpo.space import Param, parse_space
from hpo.tables import build

STUDIES_DIR = Path("studies")
# Kind → module holding its ``Settings`` dataclass (imported lazily: w2v must not pull torch).
KINDS = {"svm": "hpo.svm.config", "w2v": "hpo.w2v.config"}


@dataclass(frozen=True)
class DataSpec:
    corpus: str = "data/ravdess"
    folds: int = 6


@dataclass(frozen=True)
class ObjectiveSpec:
    metric: Literal["accuracy", "uar", "macro_f1"] = "accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"


@dataclass(frozen=True)
class SamplerSpec:
    type: Literal["tpe", "random"] = "tpe"
    seed: int | None = 0
    n_startup_trials: int = 10
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


@dataclass(frozen=True)
class BudgetSpec:
    n_trials: int = 100
    timeout: float | None = None


@dataclass(frozen=True)
class RunSpec:
    """Crash safety: a trial whose heartbeat stops for ``grace_period`` s is failed and retried."""

    heartbeat_interval: int = 30
    grace_period: int = 120
    max_retry: int = 3


@dataclass(frozen=True)
class StudySpec:
    """A validated study file."""

    name: str
    kind: Literal["svm", "w2v"]
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
        """Hash of everything that changes what a trial's value means.

        Budget and crash-safety settings, the description and the corpus *path* are left
        out: more trials, another timeout or the same corpus mounted elsewhere (another
        worker machine) continue the same study. The corpus content is checked separately
        through the manifest hash.
        """
        keep = {k: v for k, v in self.raw.items() if k not in ("budget", "run", "description")}
        keep["data"] = {k: v for k, v in keep.get("data", {}).items() if k != "corpus"}
        blob = json.dumps(keep, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

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


def resolve_study_path(study: str) -> Path:
    """``svm`` → ``studies/svm.toml``; a path to a .toml file is taken as is."""
    p = Path(study)
    if p.suffix == ".toml" or p.exists():
        return p
    return STUDIES_DIR / f"{study}.toml"


def load_spec(study: str | Path) -> StudySpec:
    """Load and validate a study file; SpecError names the file and the key on any mistake."""
    path = resolve_study_path(str(study))
    if not path.is_file():
        known = sorted(p.stem for p in STUDIES_DIR.glob("*.toml")) if STUDIES_DIR.is_dir() else []
        hint = f" (studies here: {', '.join(known)})" if known else ""
        raise SpecError(f"{path}: no such study file{hint}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read ({e})") from None
    return spec_from_dict(raw, path)


def spec_from_dict(raw: dict[str, Any], path: Path) -> StudySpec:
    where = str(path)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise SpecError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}: 'name' must be letters, digits, '-', '_' or '.', got {name!r}")
    settings_mod = importlib.import_module(KINDS[kind])
    sections = set(settings_mod.SECTIONS)
    for key in raw:
        if key not in _COMMON | sections:
            known = ", ".join(sorted(_COMMON | sections))
            raise SpecError(f"{where}: unknown key '{key}' (known: {known})")
    data = build(DataSpec, raw.get("data"), f"{where}: [data]")
    if data.folds < 2:
        raise SpecError(f"{where}: [data] 'folds' must be at least 2, got {data.folds}")
    budget = build(BudgetSpec, raw.get("budget"), f"{where}: [budget]")
    if budget.n_trials < 1:
        raise SpecError(f"{where}: [budget] 'n_trials' must be at least 1")
    run = build(RunSpec, raw.get("run"), f"{where}: [run]")
    if run.heartbeat_interval < 1 or run.grace_period <= run.heartbeat_interval:
        raise SpecError(
            f"{where}: [run] needs heartbeat_interval >= 1 and grace_period > heartbeat_interval"
        )
    pruner = build(PrunerSpec, raw.get("pruner"), f"{where}: [pruner]")
    if not 0 < pruner.p_threshold < 1:
        raise SpecError(f"{where}: [pruner] 'p_threshold' must be between 0 and 1")
    space = parse_space(raw.get("space"), where)
    settings = settings_mod.Settings.from_tables(raw, where)
    settings_mod.check_space(space, where)
    return StudySpec(
        name=name,
        kind=kind,
        path=path,
        description=str(raw.get("description", "")),
        data=data,
        objective=build(ObjectiveSpec, raw.get("objective"), f"{where}: [objective]"),
        sampler=build(SamplerSpec, raw.get("sampler"), f"{where}: [sampler]"),
        pruner=pruner,
        budget=budget,
        run=run,
        space=space,
        settings=settings,
        raw=raw,
    )
