"""Every printed best value says it is the best of N on the folds that selected it, with the
nested estimate beside it, or the command that computes it (#26 item 1)."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.results.report import build_report, nested_prose
from tests.helpers import ONE_FEATURE_SET, write_spec

PHRASE = "complete trials on the 6 folds that selected it (optimistic)"


def _cli(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> tuple[Path, str]:
    """A 3-trial SVM study and what ``hpo run`` printed; tests copy the database."""
    tmp = tmp_path_factory.mktemp("honest")
    spec = write_spec(
        tmp / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
        objective={"metric": "accuracy"},  # what these checks read (shipped: uar)
    )
    db = tmp / "s.db"
    return db, _cli("run", "--study", str(spec), "--n-trials", "3", "--storage", str(db))


@pytest.fixture
def db(run_db: tuple[Path, str], tmp_path: Path) -> Path:
    dst = tmp_path / "s.db"
    shutil.copy(run_db[0], dst)
    return dst


def _best(db: Path) -> tuple[optuna.trial.FrozenTrial, int]:
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    return study.best_trial, sum(t.state.name == "COMPLETE" for t in study.trials)


def _outputs(db: Path, tmp_path: Path) -> dict[str, str]:
    """What status (text, JSON), export (console, TOML, JSON) and report print."""
    s = str(db)
    out = {
        "status": _cli("status", "--storage", s, "--study", "svm"),
        "status_json": _cli("status", "--storage", s, "--study", "svm", "--json"),
        "export": _cli(
            "export", "--study", "svm", "--storage", s, "--out", str(tmp_path / "b.toml")
        ),
        "toml": (tmp_path / "b.toml").read_text(),
    }
    _cli(
        "export",
        "--study",
        "svm",
        "--storage",
        s,
        "--out",
        str(tmp_path / "b.json"),
        "--format",
        "json",
    )
    out["json"] = (tmp_path / "b.json").read_text()
    # The report's sentence and table, as every format prints them (no figures drawn).
    report = build_report(str(db), "svm")[0]
    out["report"] = nested_prose(report) + "\n" + report.tables["estimates"].markdown()
    return out


def test_without_a_nested_run_every_output_names_the_command(
    run_db: tuple[Path, str], db: Path, tmp_path: Path
) -> None:
    best, n = _best(db)
    head = f"best accuracy {best.value:.4f} (trial {best.number}): best of {n} {PHRASE}"
    command = f"hpo nested --study svm --storage {db}"
    tail = f"no nested estimate yet: {command} computes the honest one"
    # hpo run's summary (its database is the module's, so its --storage differs).
    assert f"best of {n} {PHRASE}; no nested estimate yet: hpo nested --study svm" in run_db[1]
    # A trial's stored std over folds is the sample std (ddof=1), as the report's is.
    assert best.user_attrs["std_accuracy"] == pytest.approx(
        np.std(best.user_attrs["fold_accuracy"], ddof=1)
    )
    out = _outputs(db, tmp_path)
    for key in ("status", "export", "toml"):
        assert f"{head}; {tail}" in out[key], key
    assert out["toml"].startswith(f"# svm: {head}")  # the exported file's header
    assert f"Best accuracy {best.value:.4f} (trial {best.number})" in out["report"]
    assert (
        f"{tail}." in out["report"]
        and f"best of {n} (trial #{best.number}), optimistic" in (out["report"])
    )
    for doc in (json.loads(out["status_json"])[0]["best"], json.loads(out["json"])):
        sel = doc["selection"]
        assert (sel["value"], sel["trial"], sel["best_of"], sel["folds"]) == (
            best.value,
            best.number,
            n,
            6,
        )
        assert sel["optimistic"] is True and sel["nested"] is None
        assert sel["nested_command"] == command and sel["statement"] == f"{head}; {tail}"
    assert tomllib.loads(out["toml"])["selection"]["nested_command"] == command


def _simulate_nested(db: Path, scores: list[float]) -> None:
    """Outer results as ``hpo nested`` stores them on its inner studies (what the report
    and status read), without running the inner searches: the real run is covered by
    tests/study/test_nested.py."""
    for k, score in enumerate(scores):
        inner = optuna.create_study(study_name=f"svm.nested-{k}", storage=f"sqlite:///{db}")
        inner.set_user_attr("nested_outer_fold", k)
        inner.set_user_attr("outer", {"fold": k, "score": score, "trial": 0})


@pytest.mark.slow  # 4-6 s: status, two exports and a report on a loaded machine
def test_with_a_nested_estimate_every_output_shows_it_beside_the_best(
    db: Path, tmp_path: Path
) -> None:
    scores = [0.5, 0.25, 0.375, 0.5, 0.125, 0.25]
    _simulate_nested(db, scores)
    best, n = _best(db)
    est, std = np.mean(scores), np.std(scores, ddof=1)  # sample std over outer folds
    line = (
        f"best of {n} {PHRASE}; nested estimate {est:.4f} ± {std:.4f} (std over 6 outer "
        f"folds, ddof=1; the honest one to report; optimism {best.value - est:+.4f})"
    )
    out = _outputs(db, tmp_path)
    for key in ("status", "export", "toml", "report"):
        assert line in out[key], key
    assert "hpo nested --study" not in out["report"]  # done: no command to run
    for doc in (json.loads(out["status_json"])[0]["best"], json.loads(out["json"])):
        nested = doc["selection"]["nested"]
        assert nested["estimate"] == pytest.approx(est) and nested["std"] == pytest.approx(std)
        assert (nested["folds"], nested["of_folds"]) == (6, 6)
        assert doc["selection"]["nested_command"] is None
    assert "| nested CV (honest) |" in out["report"]


def test_a_partial_nested_run_says_how_many_folds_and_how_to_finish(
    db: Path, tmp_path: Path
) -> None:
    _simulate_nested(db, [0.5, 0.25, 0.375])
    status = _cli("status", "--storage", str(db))
    assert "(std over 3 of 6 outer folds, ddof=1;" in status
    assert f"hpo nested --study svm --storage {db} completes it" in status
    # An inner study is not told to run nested CV of its own.
    rows = {r["study"]: r for r in json.loads(_cli("status", "--storage", str(db), "--json"))}
    assert rows["svm.nested-0"]["best"] is None and rows["svm"]["best"]["selection"]["nested"]


def test_the_dashboard_note_says_how_to_read_the_best_value(prepared: Path, tmp_path: Path) -> None:
    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec
    from hpo.study.open import provenance, study_note

    spec = load_spec(write_spec(tmp_path / "svm.toml", data={"corpus": str(prepared)}))
    note = study_note(spec, provenance(spec, load_corpus(prepared)))
    assert "best of N complete trials on the folds that selected it: optimistic" in note
    assert "`hpo nested --study svm` computes the honest (nested) estimate" in note
