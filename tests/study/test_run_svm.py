"""End to end through the CLI: run, resume, refuse a changed study, status, export."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from tests.helpers import ONE_FEATURE_SET, trial_states, write_spec


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


@pytest.fixture
def study_file(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
    )


def test_run_resume_total_semantics_and_db_contents(tmp_path: Path, study_file: Path) -> None:
    db = tmp_path / "s.db"
    code, out = _run("run", "--study", str(study_file), "--n-trials", "3", "--storage", str(db))
    assert code == 0, out
    assert "SYNTHETIC" in out
    states = trial_states(db)
    assert len(states) == 3 and all(s in ("COMPLETE", "PRUNED") for _, s in states)

    # The same command again: the study already has 3, so nothing new runs.
    code, out = _run("run", "--study", str(study_file), "--n-trials", "3", "--storage", str(db))
    assert code == 0 and "(0 new)" in out
    assert trial_states(db) == states

    # --n-trials is a total: 5 means two more, and the first three are untouched.
    code, out = _run("run", "--study", str(study_file), "--n-trials", "5", "--storage", str(db))
    assert code == 0, out
    after = trial_states(db)
    assert after[:3] == states and len(after) == 5

    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    attrs = study.user_attrs
    assert attrs["kind"] == "svm" and attrs["corpus_synthetic"] is True
    assert len(attrs["spec_hash"]) == 16 and len(attrs["manifest_hash"]) == 16
    assert "optuna" in attrs["versions"] and attrs["fold_actors"]["0"] == [1, 2, 3, 4]
    for t in study.trials:
        folds = t.user_attrs["fold_accuracy"]
        assert len(folds) == 6
        if t.state == optuna.trial.TrialState.COMPLETE:
            # A complete trial's value is the mean accuracy over all six actor folds.
            assert None not in folds
            assert t.value == pytest.approx(np.mean(folds), abs=1e-6)
            assert len(t.user_attrs["fold_uar"]) == 6 and len(t.user_attrs["fold_macro_f1"]) == 6
            cm = np.array(t.user_attrs["confusion"])
            assert cm.shape == (8, 8) and cm.sum() == 24 * 16  # every clip validated once
        if t.params.get("kernel") == "linear":
            assert "gamma" not in t.params and "degree" not in t.params
        if t.params.get("kernel") != "poly":
            assert "degree" not in t.params


def test_changed_definition_is_refused_unless_asked(
    tmp_path: Path, study_file: Path, prepared: Path
) -> None:
    db = tmp_path / "s.db"
    assert _run("run", "--study", str(study_file), "--n-trials", "1", "--storage", str(db))[0] == 0
    changed = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        space=ONE_FEATURE_SET,
        svm={"class_weight": "none"},
    )
    code, out = _run("run", "--study", str(changed), "--n-trials", "2", "--storage", str(db))
    assert code == 2
    assert "different definition" in out and "svm" in out and "--allow-changed-spec" in out
    assert len(trial_states(db)) == 1
    code, out = _run(
        "run",
        "--study",
        str(changed),
        "--n-trials",
        "2",
        "--storage",
        str(db),
        "--allow-changed-spec",
    )
    assert code == 0, out
    assert len(trial_states(db)) == 2


def test_another_corpus_is_refused(tmp_path: Path, study_file: Path, prepared_copy: Path) -> None:
    db = tmp_path / "s.db"
    assert _run("run", "--study", str(study_file), "--n-trials", "1", "--storage", str(db))[0] == 0
    # The same clips with one manifest value changed: another corpus by its manifest hash.
    manifest = prepared_copy / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",3.", ",4.", 1))
    code, out = _run(
        "run",
        "--study",
        str(study_file),
        "--n-trials",
        "2",
        "--storage",
        str(db),
        "--data",
        str(prepared_copy),
    )
    assert code == 2 and "another corpus" in out


def test_status_and_export(tmp_path: Path, study_file: Path) -> None:
    db = tmp_path / "s.db"
    code, out = _run("run", "--study", str(study_file), "--n-trials", "4", "--storage", str(db))
    assert code == 0
    # Parameters read as a person writes them, never a Python dict with 16-digit floats.
    assert "{'" not in out and not re.search(r"\d\.\d{10,}", out), out
    code, out = _run("status", "--storage", str(db))
    assert "{'" not in out and "params: feature_set=librosa" in out, out
    code, out = _run("status", "--storage", str(db), "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["study"] == "svm" and row["trials"] == 4
    assert row["states"]["COMPLETE"] + row["states"]["PRUNED"] == 4
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    assert row["best"]["value"] == pytest.approx(study.best_value)
    code, out = _run("status", "--storage", str(db))
    assert code == 0 and "accuracy per fold" in out

    jpath = tmp_path / "best.json"
    code, out = _run(
        "export",
        "--study",
        "svm",
        "--storage",
        str(db),
        "--out",
        str(jpath),
        "--format",
        "json",
        "--top",
        "3",
    )
    assert code == 0, out
    doc = json.loads(jpath.read_text())
    assert doc["study"] == "svm" and doc["metric"] == "uar"
    assert doc["value"] == pytest.approx(study.best_value)
    assert doc["params"] == study.best_params
    assert doc["fold_scores"]["uar"] == study.best_trial.user_attrs["fold_uar"]
    assert doc["fold_scores"]["accuracy"] == study.best_trial.user_attrs["fold_accuracy"]
    # Ready to train with: the searched params are merged into the fixed settings, SVC
    # parameters into [svm], the feature choices into [features].
    where = {"feature_set": ("features", "set"), "speaker_norm": ("features", "speaker_norm")}
    for k, v in study.best_params.items():
        section, key = where.get(k, ("svm", k))
        assert doc["config"][section][key] == v
    assert doc["config"]["svm"]["class_weight"] == "balanced"
    assert doc["provenance"]["manifest_hash"] == study.user_attrs["manifest_hash"]
    # The K best *complete* trials (pruned ones were not scored on every fold).
    complete = sorted((t.value for t in study.trials if t.state.name == "COMPLETE"), reverse=True)
    assert [t["value"] for t in doc["top"]] == pytest.approx(complete[:3])
    assert doc["top"][0]["value"] == pytest.approx(study.best_value)

    tpath = tmp_path / "best.toml"
    assert _run("export", "--study", "svm", "--storage", str(db), "--out", str(tpath))[0] == 0
    tdoc = tomllib.loads(tpath.read_text())
    assert tdoc["params"] == doc["params"] and tdoc["config"]["kind"] == "svm"


def test_export_without_complete_trial_and_unknown_study(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    optuna.create_study(study_name="empty", storage=f"sqlite:///{db}")
    code, out = _run("export", "--study", "empty", "--storage", str(db))
    assert code == 2 and "no complete trial" in out
    code, out = _run("export", "--study", "emty", "--storage", str(db))
    assert code == 2 and "no study named 'emty'" in out and "empty" in out
    code, out = _run("status", "--storage", str(tmp_path / "missing.db"))
    assert code == 2 and "no such study database" in out
    assert not (tmp_path / "missing.db").exists()


def test_speaker_normalisation_uses_each_speakers_own_clips_only() -> None:
    from hpo.kinds.svm.features import speaker_normalize

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) * [1, 2, 3, 4, 5] + [10, 0, -3, 7, 1]
    spk = np.repeat([1, 2, 3, 4], 10)
    Z = speaker_normalize(X, spk)
    for s in (1, 2, 3, 4):
        assert np.allclose(Z[spk == s].mean(0), 0, atol=1e-9)
        assert np.allclose(Z[spk == s].std(0), 1, atol=1e-9)
    # Changing every other speaker's clips leaves speaker 4's normalised features unchanged:
    # no information crosses from training speakers to a validation speaker.
    X2 = X.copy()
    X2[spk != 4] *= 100
    assert np.array_equal(speaker_normalize(X2, spk)[spk == 4], Z[spk == 4])


def _without_label(corpus: Path, label: str) -> None:
    """Drop every clip of ``label`` from a prepared corpus, and the label from its set."""
    import csv

    manifest = corpus / "manifest.csv"
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with manifest.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["label"] != label)
    meta = json.loads((corpus / "corpus.json").read_text())
    meta["labels"] = [x for x in meta["labels"] if x != label]
    (corpus / "corpus.json").write_text(json.dumps(meta))


def test_allowed_change_refreshes_what_the_study_says_about_its_data(
    tmp_path: Path, study_file: Path, prepared: Path, prepared_copy: Path
) -> None:
    db = tmp_path / "s.db"
    assert _run("run", "--study", str(study_file), "--n-trials", "1", "--storage", str(db))[0] == 0
    _without_label(prepared_copy, "calm")
    args = ["run", "--study", str(study_file), "--n-trials", "2", "--storage", str(db)]
    code, out = _run(*args, "--data", str(prepared_copy), "--allow-changed-spec")
    assert code == 0, out
    attrs = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").user_attrs
    # Before, only the hashes were rewritten: labels, clip count and path still named the
    # first corpus, and reports named the new 7-class confusion matrices with 8 labels.
    assert "calm" not in attrs["labels"] and len(attrs["labels"]) == 7
    assert attrs["corpus_clips"] == 24 * 14 and attrs["corpus_path"] == str(prepared_copy)
    before = attrs["spec_changes"][-1]["before"]
    assert "calm" in before["labels"] and before["corpus_path"] == str(prepared)
    assert before["corpus_clips"] == 24 * 16


def test_operational_settings_and_an_older_hash_rule_resume_the_same_study(
    tmp_path: Path, study_file: Path, prepared: Path
) -> None:
    db = tmp_path / "s.db"
    assert _run("run", "--study", str(study_file), "--n-trials", "1", "--storage", str(db))[0] == 0
    # A study written by an hpo whose hash covered other keys: judged by its stored definition.
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    study.set_user_attr("spec_hash", "an-older-rule")
    faster = write_spec(
        tmp_path / "svm2.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
        svm={"cache_size": 64.0},
    )
    code, out = _run("run", "--study", str(faster), "--n-trials", "2", "--storage", str(db))
    assert code == 0, out
    assert len(trial_states(db)) == 2
