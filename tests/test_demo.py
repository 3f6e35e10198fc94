"""The quick demo's studies (scripts/demo/, what `make demo` runs on the synthetic corpus)
are the shipped ones made smaller, and nothing else: a change to a shipped study that the
demo's copy misses fails here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hpo.kinds import load_spec
from tests.helpers import ROOT


def _raw(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def _without(raw: dict, *keys: str) -> dict:
    """``raw`` without the dotted ``keys``."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for key in keys:
        section, _, name = key.partition(".")
        if name:
            raw[section].pop(name, None)
        else:
            raw.pop(section, None)
    return raw


def test_the_quick_svm_study_is_the_shipped_one_without_compare() -> None:
    quick, full = ROOT / "scripts" / "demo" / "svm.toml", ROOT / "studies" / "svm.toml"
    spec = load_spec(quick)
    assert spec.name == "svm" and spec.data.folds == 6  # six-fold speaker CV, as shipped
    q, f = _raw(quick), _raw(full)
    # ComParE (slow to extract) is left out, and with it the selection that acts on it only.
    assert q["space"]["feature_set"]["choices"] == ["librosa", "egemaps"]
    assert "compare" in f["space"]["feature_set"]["choices"] and "select_k" not in q["space"]
    assert q["budget"]["n_trials"] < f["budget"]["n_trials"]
    smaller = ("description", "data.corpus", "budget.n_trials", "sampler.n_startup_trials")
    q["space"] = {k: v for k, v in q["space"].items() if k != "feature_set"}
    f["space"] = {k: v for k, v in f["space"].items() if k not in ("feature_set", "select_k")}
    assert _without(q, *smaller) == _without(f, *smaller)


def test_the_quick_w2v_study_is_the_shipped_tiny_one_with_fewer_epochs() -> None:
    quick, full = ROOT / "scripts" / "demo" / "w2v-tiny.toml", ROOT / "studies" / "w2v-tiny.toml"
    spec = load_spec(quick)
    assert spec.name == "w2v-tiny" and spec.data.folds == 6
    q, f = _raw(quick), _raw(full)
    assert q["training"]["epochs"] < f["training"]["epochs"]
    smaller = ("description", "data.corpus", "budget.n_trials", "training.epochs")
    assert _without(q, *smaller) == _without(f, *smaller)
