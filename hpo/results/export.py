"""``hpo export``: the best configuration of a study, ready to train with, plus its evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomli_w
from optuna.trial import TrialState

from hpo.config.paths import models_dir
from hpo.config.urls import redact
from hpo.errors import HpoError
from hpo.kinds import stored_spec
from hpo.results.honest import best_selection
from hpo.study.storage import load_study, open_storage
from hpo.util.io import write_text_atomic


def _clean(obj: Any) -> Any:
    """TOML has no null: drop None values (and keep lists aligned by writing 'nan')."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [float("nan") if v is None else _clean(v) for v in obj]
    return obj


def best_config(storage_url: str, name: str, top: int = 1) -> dict[str, Any]:
    """The export document of study ``name`` (see README: "Exported configuration")."""
    storage = open_storage(storage_url, create=False)
    study = load_study(storage, name)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise HpoError(
            f"study '{name}' has no complete trial yet; run it first (hpo run --study {name})"
        )
    attrs = study.user_attrs
    spec = stored_spec(attrs["spec"], name)
    best = study.best_trial
    reverse = study.direction.name == "MAXIMIZE"
    ranked = sorted(complete, key=lambda t: t.value, reverse=reverse)[: max(top, 1)]
    doc: dict[str, Any] = {
        "study": name,
        "kind": spec.kind,
        "metric": spec.objective.metric,
        "direction": study.direction.name.lower(),
        "value": best.value,
        "trial": best.number,
        # What "value" is: the best of N on the folds that chose it (optimistic), and the
        # nested estimate beside it, or the command that computes it.
        "selection": best_selection(storage_url, study),
        "synthetic_corpus": bool(attrs.get("corpus_synthetic")),
        # What the model classifies: `hpo train` checks its corpus has this label set.
        "corpus_name": attrs.get("corpus_name"),
        "labels": attrs.get("labels"),
        "params": best.params,
        "fold_scores": {
            m: best.user_attrs.get(f"fold_{m}") for m in ("accuracy", "uar", "macro_f1")
        },
        "config": {
            "kind": spec.kind,
            "name": name,
            "data": {
                "corpus": attrs.get("corpus_path", spec.data.corpus),
                "folds": spec.data.folds,
            },
            **spec.settings.merged(best.params),
        },
        "provenance": {
            "storage": redact(storage_url),
            "spec_hash": attrs.get("spec_hash"),
            "manifest_hash": attrs.get("manifest_hash"),
            "git_revision": attrs.get("git_revision"),
            "versions": attrs.get("versions", {}),
            "fold_actors": attrs.get("fold_actors", {}),
            "trials_complete": len(complete),
        },
    }
    if top > 1:
        doc["top"] = [{"trial": t.number, "value": t.value, "params": t.params} for t in ranked]
    return doc


def export_best(
    storage_url: str, name: str, out: Path | None = None, fmt: str = "toml", top: int = 1
) -> Path:
    """Write the export document to ``out`` (default ``models/NAME-best.FMT``) atomically."""
    if fmt not in ("toml", "json"):
        raise HpoError(f"--format {fmt!r}: use toml or json")
    doc = best_config(storage_url, name, top)
    out = out or models_dir() / f"{name}-best.{fmt}"
    if fmt == "json":
        text = json.dumps(doc, indent=2) + "\n"
    else:  # the header says what 'value' is before anyone reads it
        head = f"# {doc['study']}: {doc['selection']['statement']}\n"
        text = head + tomli_w.dumps(_clean(doc))
    write_text_atomic(out, text)
    return out


def load_export(path: Path) -> dict[str, Any]:
    """Read an exported configuration (TOML or JSON)."""
    import tomllib

    if not path.is_file():
        raise HpoError(f"{path}: no such exported configuration; run 'hpo export' first")
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise HpoError(f"{path}: not a valid exported configuration ({e})") from None
    if "config" not in doc or "kind" not in doc.get("config", {}):
        raise HpoError(f"{path}: has no [config] with a 'kind'; export it with 'hpo export'")
    return doc
