"""``hpo nested`` on both w2v paths with the epoch stage on, on the tiny random-init model:
the inner studies are screened, the outer refits never are, and a rerun retrains nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from tests.helpers import write_spec
from tests.kinds.w2v.conftest import three_fold_corpus
from tests.kinds.w2v.settings import MAX_SECONDS, TINY_LAYERS

# The fewest outer folds nested accepts (3: two inner folds each), one epoch, and a stage
# that decides from the first epoch against a single other trial: the outer refit of the
# screening fold (0) reaches the stage's decision at its only epoch.
STAGE = {
    "type": "none",  # on 3 folds (2 inner) no Wilcoxon threshold below 0.25 can fire
    "epoch_stage": True,
    "epoch_warmup": 1,
    "epoch_startup_trials": 1,
    "epoch_percentile": 99.0,
}


@pytest.fixture(scope="module")
def three_folds(w2v_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its caches are built by the first nested run that needs them (the folds are part of
    their key)."""
    return three_fold_corpus(w2v_corpus, tmp_path_factory.mktemp("three-folds"))


def _spec(tmp_path: Path, corpus: Path, base: str, epochs: float, seed: int = 42) -> Path:
    return write_spec(
        tmp_path / f"{base}.toml",
        base=base,
        sampler={"seed": seed},
        data={"corpus": str(corpus), "folds": 3},
        model={"name": "tiny"},
        space=TINY_LAYERS if base == "w2v-probe" else {},
        pruner=STAGE,
        training={
            "epochs": epochs,
            "max_seconds": MAX_SECONDS,
            "tensorboard_dir": str(tmp_path / "runs"),
        },
    )


def _nested(spec: Path, db: Path, monkeypatch: pytest.MonkeyPatch, module) -> tuple[dict, int]:
    """The JSON summary of ``hpo nested`` with 2 inner trials, and how many folds it trained
    (calls of ``module.FUNCTION``, the kind's fold training)."""
    name = "train_fold" if module.__name__.endswith("finetune.train") else "train_head"
    real, calls = getattr(module, name), []

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    with monkeypatch.context() as mp:
        mp.setattr(module, name, counted)
        res = CliRunner().invoke(
            cli,
            ["nested", "--study", str(spec), "--inner-trials", "2"]
            + ["--storage", str(db), "--json"],
        )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), len(calls)


def _check_outer(doc: dict, db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    """Each outer fold's score is its refit's own; the inner trials, all of them."""
    outer, inner_trials = doc["outer"], []
    assert [o["fold"] for o in outer] == [0, 1, 2]
    assert sorted(a for o in outer for a in o["actors"]) == [1, 5, 9, 13, 17, 21]
    for o in outer:
        inner = optuna.load_study(
            study_name=f"{name}.nested-{o['fold']}", storage=f"sqlite:///{db}"
        )
        best = inner.best_trial
        assert len(inner.trials) == 2 and best.user_attrs["folds_done"] == 2  # inner folds only
        # The outer score is the chosen trial's configuration refit on the inner speakers and
        # measured on the held-out ones: its own UAR (the metric), not the inner value.
        assert (o["trial"], o["params"], o["inner_value"]) == (best.number, best.params, best.value)
        assert o["score"] == o["scores"]["uar"] and 0.0 <= o["score"] <= 1.0
        assert inner.user_attrs["outer"] == o
        inner_trials += inner.trials
    assert doc["estimate"] == pytest.approx(np.mean([o["score"] for o in outer]))
    return inner_trials


@pytest.mark.slow  # 12-26 s: 3 x (2 trials x 2 folds + a refit) tiny fine-tunings
def test_nested_w2v_tiny_with_the_epoch_stage_refits_unscreened_and_resumes(
    tmp_path: Path, three_folds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpo.kinds.w2v.finetune import train

    # Sampler seed 1: one under which an inner trial falls strictly below the other at the
    # screening epoch. The tiny random model often ties at chance on 8 clips, and a tie
    # stops nothing (seeds 0, 3, 5, 7 and the study's 42 leave nothing to screen; 1 and 2 do).
    spec = _spec(tmp_path, three_folds, "w2v-tiny", epochs=1.0, seed=1)
    db = tmp_path / "s.db"
    first, trained = _nested(spec, db, monkeypatch, train)
    inner = _check_outer(first, db, "w2v-tiny")
    # The stage works inside the inner studies: a trial below the other's first epoch on
    # the screening fold stops there (its one fold trained); the refits are never screened.
    screened = [t for t in inner if t.user_attrs.get("pruned_at", {}).get("fold") == 0]
    assert screened and all(t.state == optuna.trial.TrialState.PRUNED for t in screened)
    complete = [t for t in inner if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) + len(screened) == len(inner)
    assert trained == 2 * len(complete) + len(screened) + 3
    for o in first["outer"]:  # each refit's TensorBoard run beside the inner trials' runs
        k = o["fold"]
        assert (
            tmp_path / f"runs/w2v-tiny.nested-{k}/outer/trial-{o['trial']:04d}/fold-{k}"
        ).is_dir()
    again, retrained = _nested(spec, db, monkeypatch, train)
    assert retrained == 0 and again["outer"] == first["outer"]


@pytest.mark.slow
def test_nested_w2v_probe_with_the_epoch_stage_refits_unscreened_and_resumes(
    tmp_path: Path, three_folds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpo.kinds.w2v.probe import train

    spec = _spec(tmp_path, three_folds, "w2v-probe", epochs=2.0)
    db = tmp_path / "s.db"
    first, trained = _nested(spec, db, monkeypatch, train)
    _check_outer(first, db, "w2v-probe")
    again, retrained = _nested(spec, db, monkeypatch, train)
    assert retrained == 0 and again["outer"] == first["outer"]
    # A lost outer score is measured again, the same: one refit, nothing else.
    storage = f"sqlite:///{db}"
    optuna.load_study(study_name="w2v-probe.nested-0", storage=storage).set_user_attr("outer", None)
    third, retrained = _nested(spec, db, monkeypatch, train)
    assert retrained == 1 and third["outer"] == first["outer"]
