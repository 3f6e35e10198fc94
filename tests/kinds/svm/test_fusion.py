"""Early fusion as a searched choice: ``feature_set = "librosa+egemaps"`` concatenates the
sets, each weighed the same, with every weight fitted on the training rows only."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import joblib
import numpy as np
import optuna
import pytest
import tomli_w
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.kinds.svm.config import FeatureSettings
from hpo.kinds.svm.features import corpus_features
from hpo.kinds.svm.kernels import kernels, precomputed_svc
from hpo.kinds.svm.objective import SvmObjective
from hpo.kinds.svm.pipeline import make_pipeline, preprocessing
from tests.helpers import write_spec

FUSED = "librosa+egemaps"  # 403 + 88 features: cheap to extract, sizes far apart
UNIT = {"scale": "unit", "kernel": "linear", "C": 1.0, "class_weight": "balanced"}


def _spec(tmp: Path, corpus: Path, choices: list, **sections) -> Path:
    spec = write_spec(tmp / "svm.toml", data={"corpus": str(corpus)}, **sections)
    raw = tomllib.loads(spec.read_text())
    raw["space"]["feature_set"]["choices"] = choices
    spec.write_text(tomli_w.dumps(raw))
    return spec


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_each_set_weighs_the_same_and_the_weights_come_from_training_rows_only() -> None:
    rng = np.random.default_rng(0)
    # Two sets 10x apart in size and 1000x apart in units, as eGeMAPS beside ComParE.
    X = np.hstack([rng.normal(0, 1000, (60, 5)), rng.normal(3, 0.01, (60, 50))])
    y = rng.integers(0, 2, 60)
    train, valid = np.arange(40), np.arange(40, 60)
    blocks = [("small", 5), ("large", 50)]
    prep = preprocessing(UNIT, blocks).fit(X[train], y[train])
    xt = prep.transform(X[train])
    # Each set contributes half of the training rows' mean squared norm, whatever its size
    # or units: equal weight, and unit mean squared norm overall (scale-free C).
    for cols in (slice(0, 5), slice(5, 55)):
        assert np.mean(np.sum(xt[:, cols] ** 2, axis=1)) == pytest.approx(0.5)
    # Validation rows are transformed with the training rows' statistics: the set's mean,
    # standard deviation and unit-norm factor from X[train] alone.
    for cols in (slice(0, 5), slice(5, 55)):
        tr, va = X[train][:, cols], X[valid][:, cols]
        z_tr, z_va = (tr - tr.mean(0)) / tr.std(0), (va - tr.mean(0)) / tr.std(0)
        unit = 1 / np.sqrt(np.mean(np.sum(z_tr**2, axis=1)))
        expected = z_va * unit / np.sqrt(2)
        assert np.allclose(prep.transform(X[valid])[:, cols], expected, atol=1e-10)
    # Validation rows never move what the training rows become.
    wild = X.copy()
    wild[valid] = wild[valid] * 1e6 + 17
    refit = preprocessing(UNIT, blocks).fit(wild[train], y[train])
    assert np.array_equal(refit.transform(wild[train]), xt)


def test_fused_kernels_of_the_objective_are_the_saved_pipelines(
    tmp_path: Path, few_clips: Path
) -> None:
    spec = load_spec(_spec(tmp_path, few_clips, [FUSED]))
    corpus = load_corpus(few_clips)
    objective = SvmObjective(spec, corpus)
    s = FeatureSettings(set=FUSED, speaker_norm=False)
    X, y = corpus_features(corpus, s), corpus.label_ids
    blocks = [("librosa", 403), ("egemaps", 88)]
    assert X.shape[1] == 491
    for svm in (UNIT, {**UNIT, "kernel": "rbf", "gamma": 0.5, "C": 10.0}):
        for fold in objective.folds[:3]:
            g = objective.gram(s, fold, svm)
            xt = preprocessing(svm, blocks).fit(X[fold.train], y[fold.train])
            # The trial's Gram matrix is the saved pipeline's preprocessed training rows'.
            assert np.allclose(g.train, xt.transform(X[fold.train]) @ xt.transform(X[fold.train]).T)
            k_train, k_valid = kernels(svm, g)
            got = precomputed_svc(svm).fit(k_train, y[fold.train]).predict(k_valid)
            want = make_pipeline(svm, blocks=blocks).fit(X[fold.train], y[fold.train])
            # The same problem on the same numbers: what CV scores is what train saves.
            assert np.array_equal(got, want.predict(X[fold.valid]))


def test_the_cache_holds_each_set_once_not_each_combination(tmp_path: Path) -> None:
    spec = load_spec(
        write_spec(
            tmp_path / "svm.toml",
            space={
                "feature_set": {
                    "type": "categorical",
                    "choices": ["egemaps", "librosa+egemaps", "egemaps+compare"],
                }
            },
        )
    )
    # What `hpo run` extracts up front: the three sets, each once.
    variants = spec.settings.feature_variants(spec.space)
    assert [v.set for v in variants] == ["egemaps", "librosa", "compare"]


def test_a_fused_trial_runs_in_a_study_and_follows_export_train_predict(
    tmp_path: Path, few_clips: Path
) -> None:
    spec = _spec(tmp_path, few_clips, [FUSED], sampler={"n_startup_trials": 2})
    raw = tomllib.loads(spec.read_text())
    raw["space"]["speaker_norm"]["choices"] = [False]  # so one clip is enough to predict
    raw["space"]["select_k"]["choices"] = [50]
    for conditional in ("gamma", "degree", "coef0"):
        del raw["space"][conditional]
    raw["space"]["kernel"]["choices"] = ["linear"]
    spec.write_text(tomli_w.dumps(raw))
    db = tmp_path / "s.db"
    res = _invoke("run", "--study", str(spec), "--n-trials", "2", "--storage", str(db))
    assert res.exit_code == 0, res.output
    trials = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").trials
    # The fused choice is a parameter like any other, stored with the trial's scores.
    assert [t.params["feature_set"] for t in trials] == [FUSED, FUSED]
    assert trials[0].state.name == "COMPLETE" and len(trials[0].user_attrs["fold_uar"]) == 6
    cfg, out = tmp_path / "best.json", tmp_path / "model"
    args = ["export", "--study", "svm", "--storage", str(db), "--out", str(cfg)]
    res = _invoke(*args, "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(cfg.read_text())["config"]["features"]["set"] == FUSED
    res = _invoke("train", "--config", str(cfg), "--out", str(out))
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "hpo.json").read_text())
    assert meta["fused_sets"] == {"librosa": 403, "egemaps": 88}
    pipe = joblib.load(out / "model.joblib").estimator_
    # Each set keeps at most 50 of its own features (50 of 403, 50 of 88) and is weighed
    # apart; the saved model takes the clip's 491 fused features, in the study's order.
    fuse = pipe.named_steps["fuse"].named_transformers_
    assert [fuse[n]["select"].get_support().sum() for n in ("librosa", "egemaps")] == [50, 50]
    assert pipe.n_features_in_ == 491
    clip = str(sorted((few_clips.parent / "src" / "Actor_05").glob("*.wav"))[0])
    res = _invoke("predict", "--model", str(out), clip, "--json")
    assert res.exit_code == 0, res.output
    probs = json.loads(res.stdout)["predictions"][clip]
    assert len(probs) == 8 and abs(sum(probs) - 1) < 1e-4


@pytest.mark.parametrize(
    ("choices", "features", "needle"),
    [
        (["compare", "compare+mfcc"], {}, "[space.feature_set] choice 'compare+mfcc': 'mfcc' is"),
        (["egemaps+egemaps"], {}, "[space.feature_set] choice 'egemaps+egemaps' names a set twice"),
        (["egemaps"], {"set": "egemaps+mfcc"}, "[features]: 'set' 'egemaps+mfcc': 'mfcc' is not"),
    ],
)
def test_an_unknown_set_in_a_combination_is_refused_in_one_line(
    tmp_path: Path, prepared: Path, choices: list, features: dict, needle: str
) -> None:
    spec = _spec(tmp_path, prepared, choices, features=features)
    db = tmp_path / "s.db"
    res = _invoke("run", "--study", str(spec), "--storage", str(db))
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"{spec}: {needle}" in res.output
    assert not db.exists()


def test_fusion_needs_scale_free_c(tmp_path: Path, prepared: Path) -> None:
    spec = _spec(tmp_path, prepared, [FUSED])
    spec.write_text(spec.read_text().replace('scale = "unit"\n', ""))
    db = tmp_path / "s.db"
    res = _invoke("run", "--study", str(spec), "--storage", str(db))
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert (
        f"{spec}: [svm] a fused feature_set (sets joined by '+') needs scale = \"unit\""
        in res.output
    )
    assert not db.exists()
