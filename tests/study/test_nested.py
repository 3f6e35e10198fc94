"""``hpo nested``: inner searches never see their outer fold's actors, and they resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.formats.ravdess import gender_of
from tests.helpers import ONE_FEATURE_SET, write_spec


@pytest.fixture
def spec(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 2},
        space=ONE_FEATURE_SET,
        objective={"metric": "accuracy"},  # what these checks read (shipped: uar)
    )


def _nested(spec: Path, db: Path, n: int) -> dict:
    res = CliRunner().invoke(
        cli,
        ["nested", "--study", str(spec), "--inner-trials", str(n), "--storage", str(db), "--json"],
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.slow
def test_nested_cv_keeps_outer_actors_out_of_their_inner_search(spec: Path, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    r = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
    )
    assert r.exit_code == 0, r.output
    doc = _nested(spec, db, 2)
    outer = doc["outer"]
    # The outer validation actors partition all actors (the corpus's own folds).
    held_out = [a for o in outer for a in o["actors"]]
    assert sorted(held_out) == list(range(1, 25)) and len(outer) == 6
    assert doc["estimate"] == pytest.approx(np.mean([o["score"] for o in outer]))
    # The sample std over outer folds (ddof=1): they are a sample of speakers.
    assert doc["std"] == pytest.approx(np.std([o["score"] for o in outer], ddof=1))
    plain = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").best_value
    assert doc["optimism"] == pytest.approx(plain - doc["estimate"])
    for o in outer:
        inner = optuna.load_study(study_name=f"svm.nested-{o['fold']}", storage=f"sqlite:///{db}")
        folds = inner.user_attrs["inner_fold_actors"]
        # Its provenance names the folds it was scored on, not the corpus's outer ones.
        assert inner.user_attrs["fold_actors"] == folds
        inner_actors = [a for actors in folds.values() for a in actors]
        # Five inner folds of 2 women and 2 men over exactly the other 20 actors.
        assert sorted(inner_actors) == sorted(set(range(1, 25)) - set(o["actors"]))
        assert len(folds) == 5
        for actors in folds.values():
            assert sorted(gender_of(a) for a in actors) == ["female"] * 2 + ["male"] * 2
        assert len(inner.trials) == 2
        for t in inner.trials:  # scored on the inner folds only
            assert len(t.user_attrs["fold_accuracy"]) == 5
        assert inner.user_attrs["outer"]["trial"] == inner.best_trial.number
        assert o["params"] == inner.best_trial.params
    # The report shows the nested estimate beside the plain best, and each choice's best.
    out = tmp_path / "rep"
    r = CliRunner().invoke(
        cli, ["report", "--study", "svm", "--storage", str(db), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    page = (out / "index.html").read_text()
    assert f"nested estimate {doc['estimate']:.4f} ± {doc['std']:.4f}" in page
    assert f"Best accuracy {plain:.4f}" in page
    assert "Best value per choice" in page and "<td>kernel</td>" in page


@pytest.mark.slow  # three nested runs of six inner studies each
def test_an_interrupted_nested_run_resumes_where_it_stopped(spec: Path, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = _nested(spec, db, 1)
    storage = f"sqlite:///{db}"
    before = {
        k: [
            t.value for t in optuna.load_study(study_name=f"svm.nested-{k}", storage=storage).trials
        ]
        for k in range(6)
    }
    # Lose one outer result and one inner trial count, as an interrupted run would.
    s3 = optuna.load_study(study_name="svm.nested-3", storage=storage)
    s3.set_user_attr("outer", None)
    again = _nested(spec, db, 1)
    after = {
        k: [
            t.value for t in optuna.load_study(study_name=f"svm.nested-{k}", storage=storage).trials
        ]
        for k in range(6)
    }
    assert after == before  # no inner trial run again
    assert again["outer"] == first["outer"]  # the missing outer score recomputed, the same
    assert first["optimism"] is None  # no plain study in this storage
    more = _nested(spec, db, 2)  # a larger budget continues each inner study
    for k in range(6):
        trials = optuna.load_study(study_name=f"svm.nested-{k}", storage=storage).trials
        assert [t.value for t in trials][:1] == before[k] and len(trials) == 2
    assert len(more["outer"]) == 6
