"""Study kinds: each folder owns everything of one model family (settings, shared caches,
objective, training, prediction); this registry is the only place that lists them.

Adding a kind: a new folder whose ``__init__`` defines ``KIND`` (see ``_base.Kind``), and
one line below.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

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
