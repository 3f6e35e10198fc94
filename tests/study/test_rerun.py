"""``hpo rerun``: the chosen configuration trained again on every fold with new seeds, stored
on the study, resumable, and shown by the report (#26 item 7)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.study.rerun import SEED_STRIDE, _seeder, run_rerun
from tests.helpers import ONE_FEATURE_SET, write_spec

METRICS = ("accuracy", "uar", "macro_f1")


def _cli(*args: str) -> tuple[int, str]:
    """Exit code and stdout (progress lines go to stderr, so --json's stdout is JSON)."""
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.stdout


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> Path:
    tmp = tmp_path_factory.mktemp("rerun")
    spec = write_spec(
        tmp / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
        objective={"metric": "accuracy"},  # what these checks read (shipped: uar)
    )
    db = tmp / "s.db"
    code, out = _cli("run", "--study", str(spec), "--n-trials", "3", "--storage", str(db))
    assert code == 0, out
    return db


@pytest.fixture
def db(study_db: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "s.db"
    shutil.copy(study_db, dst)
    return dst


@pytest.fixture
def svc_seeds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The random_state of every SVC the SVM objective fits: one per fold trained."""
    import hpo.kinds.svm.objective as objective

    real, seeds = objective.precomputed_svc, []

    def recorded(svm: dict, seed: int = 0):
        seeds.append(seed)
        return real(svm, seed)

    monkeypatch.setattr(objective, "precomputed_svc", recorded)
    return seeds


def test_rerun_stores_every_seed_and_fold_and_seed_0_reproduces_the_trial(
    db: Path, svc_seeds: list[int], tmp_path: Path
) -> None:
    code, out = _cli("rerun", "--study", "svm", "--seeds", "3", "--storage", str(db), "--json")
    assert code == 0, out
    doc = json.loads(out)
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    best = study.best_trial
    stored = study.user_attrs["reruns"][str(best.number)]
    assert stored["trial"] == best.number and stored["params"] == best.params
    assert sorted(stored["seeds"]) == ["0", "1", "2", "3"]
    assert [stored["seeds"][k]["seed"] for k in "0123"] == [0, 1000, 2000, 3000]
    # Every seed reached the SVC, once per fold.
    assert svc_seeds == [s for s in (0, 1000, 2000, 3000) for _ in range(6)]
    for k in "0123":
        for m in METRICS:
            assert len(stored["seeds"][k]["scores"][m]) == 6
            assert None not in stored["seeds"][k]["scores"][m]
    # Seed 0 is the trial's own: it gives back the trial's fold scores exactly.
    for m in METRICS:
        assert stored["seeds"]["0"]["scores"][m] == best.user_attrs[f"fold_{m}"]
    assert doc["original_reproduced"] is True
    # The summary is over the new seeds (1..3) only; the SVC is deterministic here.
    new = [stored["seeds"][k]["scores"]["accuracy"] for k in "123"]
    st = doc["stats"]["accuracy"]
    assert st["seeds"] == 3 and st["mean"] == pytest.approx(np.mean([np.mean(s) for s in new]))
    assert st["sd_all"] == pytest.approx(np.std(np.concatenate(new), ddof=1))
    assert st["scores"] == 18 and doc["identical"] is True
    assert st["ci"] == pytest.approx([st["mean"], st["mean"]])  # no spread over seeds
    code, text = _cli("rerun", "--study", "svm", "--seeds", "3", "--storage", str(db))
    assert code == 0 and "seed 0 reproduced the trial's fold scores exactly" in text
    assert f"accuracy over 3 new seeds: mean {st['mean']:.4f}, 95% CI [" in text
    assert "training is deterministic here" in text
    # The report shows it: a table per trial and metric.
    code, out = _cli(
        "report", "--study", "svm", "--storage", str(db), "--out", str(tmp_path / "r"),
        "--format", "json",
    )  # fmt: skip
    assert code == 0, out
    table = json.loads((tmp_path / "r" / "report.json").read_text())["tables"]["reruns"]
    row = table["rows"][0]
    assert (row["trial"], row["metric"], row["new seeds"]) == (f"#{best.number}", "accuracy", 3)
    assert row["mean over seeds"] == pytest.approx(st["mean"], abs=1e-6)
    assert row["reproduced"] == "yes" and "Student t-interval" in table["caption"]


def test_a_second_rerun_redoes_no_seed_and_finishes_a_half_done_one(
    db: Path, svc_seeds: list[int]
) -> None:
    url = f"sqlite:///{db}"
    run_rerun(url, "svm", 2)
    assert len(svc_seeds) == 18
    # Lose seed 2's last fold, as a rerun killed during it would.
    study = optuna.load_study(study_name="svm", storage=url)
    runs = study.user_attrs["reruns"]
    (entry,) = runs.values()
    for m in METRICS:
        entry["seeds"]["2"]["scores"][m][5] = None
    study.set_user_attr("reruns", runs)
    svc_seeds.clear()
    summary = run_rerun(url, "svm", 3)  # one more seed too
    assert svc_seeds == [2000] + [3000] * 6  # the lost fold, then the new seed only
    assert [s["index"] for s in summary["seeds"]] == [0, 1, 2, 3]
    svc_seeds.clear()
    run_rerun(url, "svm", 3)
    assert svc_seeds == []  # all done: nothing trained, not even the features loaded


def test_rerun_refuses_a_pruned_or_missing_trial(db: Path) -> None:
    def _cli(*args: str) -> tuple[int, str]:  # errors go to stderr
        res = CliRunner().invoke(cli, list(args))
        return res.exit_code, res.output

    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    code, out = _cli("rerun", "--study", "svm", "--trial", "99", "--storage", str(db))
    assert code == 2 and "has no trial 99" in out and "Traceback" not in out
    pruned = [t.number for t in study.trials if t.state.name == "PRUNED"]
    if pruned:
        code, out = _cli("rerun", "--study", "svm", "--trial", str(pruned[0]), "--storage", str(db))
        assert code == 2 and "only a complete trial" in out
    assert "reruns" not in optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").user_attrs


def test_the_w2v_seed_is_the_training_seed_moved_by_the_stride() -> None:
    """Without training anything: seed k sets ``[training] seed`` to seed + k * stride, which
    is what the w2v fold functions read (they train fold f with that seed + f)."""
    from hpo.kinds import load_spec

    spec = load_spec("w2v")
    objective = type("Objective", (), {"spec": spec})()
    set_seed = _seeder(objective, spec)
    base = spec.settings.training.seed
    assert set_seed(0) == base and objective.spec.settings.training.seed == base
    assert set_seed(2) == base + 2 * SEED_STRIDE
    assert objective.spec.settings.merged({})["training"]["seed"] == base + 2 * SEED_STRIDE
    # Only the seed changes: every other setting is the study's.
    moved = dataclasses.replace(objective.spec.settings.training, seed=base)
    assert moved == spec.settings.training and objective.spec.name == spec.name
