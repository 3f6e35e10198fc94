"""What a printed best value is, said the same way by every command that prints one.

A study's best value is the maximum over its complete trials of a CV mean scored on the very
folds the search chose it on: an optimistic estimate of what the configuration does on new
speakers. Beside it goes the nested estimate (``hpo nested``: each outer fold's pick scored
on speakers its search never saw) when one is stored, else the command that computes it.
``hpo run``, ``hpo status`` (text and JSON), ``hpo export`` (console and file) and
``hpo report`` all build their line and their JSON block here.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from hpo.config.paths import storage_url as default_storage_url
from hpo.config.urls import redact
from hpo.study.nested import nested_summary
from hpo.study.storage import load_study, open_storage
from hpo.trial.metrics import cv_value


def nested_command(name: str, storage_url: str) -> str:
    """The exact ``hpo nested`` command for study ``name`` in this storage (``--storage``
    only where the default would not find it; never with a password)."""
    where = "" if storage_url == default_storage_url() else f" --storage {redact(storage_url)}"
    return f"hpo nested --study {name}{where}"


def best_selection(
    storage_url: str, study: optuna.Study, nested: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The study's best value and what it is, JSON-ready, or None without a complete trial.

    Keys: ``study``, ``value``, ``trial``, ``metric``, ``best_of`` (complete trials it is the best
    of), ``folds`` (folds each was scored on), ``optimistic`` (always True),
    ``nested`` (``{"estimate", "std", "folds", "of_folds", "optimism"}`` or None),
    ``nested_command`` (None where a nested estimate is stored, or for an inner study of
    nested CV, ``inner_of_outer_fold`` names its outer fold) and ``statement``, the line
    every command prints. ``nested``: an already loaded ``nested_summary``."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    attrs = study.user_attrs
    metric = attrs.get("metric", "value")
    best = study.best_trial
    inner = attrs.get("nested_outer_fold")
    if nested is None and inner is None:
        nested = nested_summary(storage_url, study.study_name)
    doc: dict[str, Any] = {
        "study": study.study_name,
        "value": best.value,
        "trial": best.number,
        "metric": metric,
        "best_of": len(complete),
        "folds": cv_value(best, metric).folds,
        "optimistic": True,
        "nested": None,
        "nested_command": None,
        "inner_of_outer_fold": inner,
    }
    if nested and inner is None:
        doc["nested"] = {
            **{k: nested[k] for k in ("estimate", "std", "folds")},
            "of_folds": len(attrs.get("fold_actors", {})) or None,
            "optimism": best.value - nested["estimate"],
        }
    if inner is None and (doc["nested"] is None or _incomplete(doc["nested"])):
        doc["nested_command"] = nested_command(study.study_name, storage_url)
    doc["statement"] = selection_statement(doc)
    return doc


def study_selection(storage_url: str, name: str) -> dict[str, Any] | None:
    """:func:`best_selection` of the study called ``name``."""
    return best_selection(storage_url, load_study(open_storage(storage_url, create=False), name))


def _incomplete(n: dict[str, Any]) -> bool:
    return n["of_folds"] is not None and n["folds"] < n["of_folds"]


def _folds_text(folds: int | None) -> str:
    return f"the {folds} folds" if folds else "the folds"


def selection_statement(doc: dict[str, Any]) -> str:
    """The line: the best value, what it is the best of, and the nested estimate beside it
    (or the command for it). ``doc``: :func:`best_selection`'s."""
    head = (
        f"best {doc['metric']} {doc['value']:.4f} (trial {doc['trial']}): best of "
        f"{doc['best_of']} complete trials on {_folds_text(doc['folds'])} that selected it "
        "(optimistic)"
    )
    if doc["inner_of_outer_fold"] is not None:
        return (
            f"{head}; an inner study of nested CV: hpo nested scores its pick on outer fold "
            f"{doc['inner_of_outer_fold']}"
        )
    n = doc["nested"]
    if n is None:
        return f"{head}; no nested estimate yet: {doc['nested_command']} computes the honest one"
    over = f"{n['folds']} of {n['of_folds']}" if _incomplete(n) else f"{n['folds']}"
    std = f" ± {n['std']:.4f}" if n["std"] is not None else ""
    line = (
        f"{head}; nested estimate {n['estimate']:.4f}{std} (std over {over} outer folds, "
        f"ddof=1; the honest one to report; optimism {n['optimism']:+.4f})"
    )
    if _incomplete(n):
        line += f"; {doc['nested_command']} completes it"
    return line
