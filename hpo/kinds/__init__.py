"""Study kinds: each folder owns everything of one model family (settings, shared caches,
objective, training, prediction); this registry is the only place that lists them.

Adding a kind: a new folder whose ``__init__`` defines ``KIND`` (see ``_base.Kind``), and
one line below.

Loading a study file lives here too: the registry finds the file's kind, and
``hpo.config.study`` validates the file with that kind's settings (config sits below the
kinds and never looks them up itself).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.config import study as study_file
from hpo.config.study import KindSettings, StudySpec

if TYPE_CHECKING:
    from hpo.kinds._base import Kind

# Imported lazily: looking up "svm" must never import torch.
_REGISTRY = {
    "svm": "hpo.kinds.svm",
    "w2v": "hpo.kinds.w2v",
}


def kind_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_kind(name: str) -> Kind:
    """The kind called ``name``; KeyError if there is none."""
    return import_module(_REGISTRY[name]).KIND


def _settings_loaders() -> dict[str, Callable[[], KindSettings]]:
    # A loader per kind: only the kind a file names gets imported.
    return {name: (lambda name=name: get_kind(name).settings()) for name in _REGISTRY}


def spec_from_dict(raw: dict[str, Any], path: Path) -> StudySpec:
    """Validate a parsed study file of any kind; ``path`` names it in errors."""
    return study_file.spec_from_dict(raw, path, _settings_loaders())


def stored_spec(raw: dict[str, Any], name: str) -> StudySpec:
    """A study's definition as stored with it (its ``spec`` user attribute). A key the
    stored file left out means what it meant when the study ran: a kind's
    ``STORED_DEFAULTS`` fill the keys whose default has changed since (w2v's
    ``class_weight``: a study that an older hpo ran trained unweighted, whatever its
    metric; a probe's ``standardize``: it read unstandardised features), so an export or a
    rerun rebuilds the model the study scored."""
    raw = copy.deepcopy(raw)
    if raw.get("kind") in _REGISTRY:
        settings = get_kind(raw["kind"]).settings().Settings
        # A kind whose older defaults depend on the definition (w2v: the probe's path
        # only) computes them from it.
        by_path = getattr(settings, "stored_defaults", None)
        defaults = by_path(raw) if by_path else getattr(settings, "STORED_DEFAULTS", {})
        for section, keys in defaults.items():
            table = raw.setdefault(section, {})
            if isinstance(table, dict):
                for key, value in keys.items():
                    table.setdefault(key, value)
    return spec_from_dict(raw, Path(f"{name}.toml"))


def load_spec(study: str | Path) -> StudySpec:
    """Load and validate a study file (a name or a path); SpecError names the file and the
    key on any mistake."""
    raw, path = study_file.read_study_file(study)
    return spec_from_dict(raw, path)
