"""The SVM pipeline: fold-internal imputation, the speaker-normalisation rule, scale-free C
and gamma, and an exported configuration reproduced by scikit-learn's plain scaler + SVC."""

from __future__ import annotations

import json
import tomllib
import warnings
from pathlib import Path

import joblib
import numpy as np
import optuna
import pytest
import tomli_w
from click.testing import CliRunner
from sklearn.pipeline import make_pipeline as sk_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from hpo.cli import cli
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.kinds.svm.config import FeatureSettings
from hpo.kinds.svm.features import corpus_features, speaker_normalize
from hpo.kinds.svm.pipeline import make_pipeline, preprocessing
from hpo.trial.metrics import fold_scores
from tests.helpers import write_spec


def _with_space(path: Path, space: dict) -> Path:
    """The study file at ``path`` with its whole [space] replaced by ``space``."""
    raw = tomllib.loads(path.read_text())
    path.write_text(tomli_w.dumps({**raw, "space": space}))
    return path


class _FiniteMedianImputer:
    """The hand-written imputer scikit-learn's SimpleImputer replaced: the reference."""

    def fit(self, X: np.ndarray) -> _FiniteMedianImputer:
        X = np.asarray(X, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column with no finite value
            med = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
        self.median_ = np.where(np.isfinite(med), med, 0.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=np.float64)
        bad = ~np.isfinite(X)
        X[bad] = np.broadcast_to(self.median_, X.shape)[bad]
        return X


def _imputer():
    """The pipeline's imputation steps (±inf to NaN, then the training median)."""
    return preprocessing({})[:2]


def test_imputation_uses_the_training_rows_only() -> None:
    train = np.array([[1.0, np.nan, np.nan], [3.0, 2.0, np.nan], [5.0, np.inf, np.nan]])
    valid = np.array([[np.nan, -np.inf, np.nan], [1e9, np.nan, 7.0]])
    imp = _imputer().fit(train)
    # Medians of the finite training values; a column with none gets 0.
    assert np.array_equal(imp.transform(valid), [[3.0, 2.0, 0.0], [1e9, 2.0, 7.0]])
    # Validation values never move what the training rows were imputed with.
    assert np.array_equal(imp.transform(train)[:, 0], [1.0, 3.0, 5.0])
    assert np.array_equal(imp.transform(train), _imputer().fit(train).transform(train))


@pytest.mark.parametrize("seed", range(5))
def test_the_library_imputer_gives_what_the_hand_written_one_gave(seed: int) -> None:
    rng = np.random.default_rng(seed)
    train, valid = rng.normal(size=(40, 12)), rng.normal(size=(15, 12))
    for X in (train, valid):
        X[rng.random(X.shape) < 0.2] = np.nan
        X[rng.random(X.shape) < 0.05] = np.inf
        X[rng.random(X.shape) < 0.05] = -np.inf
    train[:, 3] = np.nan  # a column with no finite training value
    train[:, 7] = np.inf
    train[::2, 5] = np.nan  # an even count of finite values: the median is a mean of two
    old = _FiniteMedianImputer().fit(train)
    new = _imputer().fit(train)
    for X in (train, valid, valid.astype(np.float32)):
        got = new.transform(X)
        assert got.dtype == np.float64 and np.isfinite(got).all()
        assert np.array_equal(got, old.transform(X))


def test_speaker_normalisation_rule_for_near_constant_features() -> None:
    rng = np.random.default_rng(0)
    n = 12
    tiny = 1e-9 * (1 + 0.1 * rng.normal(size=n))  # a real feature in small units
    constant = np.full(n, 4.2)
    jitter = np.float32(1000.0) + rng.integers(0, 2, n) * np.spacing(np.float32(1000.0))
    usual = rng.normal(5, 2, size=n)
    usual[3] = np.nan  # statistics from the finite values; the gap stays for the imputer
    X = np.column_stack([tiny, constant, jitter.astype(np.float32), usual]).astype(np.float32)
    Z = speaker_normalize(X, np.zeros(n))
    # Any deviation beyond float32 rounding is divided by, however small in absolute terms
    # (the old 1e-8 floor left this one unscaled, at 1e-10).
    assert Z[:, 0].std() == pytest.approx(1.0, abs=1e-6)
    # Constant, or varying only in the last float32 bit: rounding, so 0 for this speaker.
    assert np.array_equal(Z[:, 1], np.zeros(n)) and np.array_equal(Z[:, 2], np.zeros(n))
    assert np.isnan(Z[3, 3]) and np.nanstd(Z[:, 3]) == pytest.approx(1.0)


def test_unit_scale_gives_the_same_model_on_any_number_of_features() -> None:
    # The same information in 10 times the features (each repeated): scale-free C and
    # gamma give exactly the same predictions; absolute ones do not.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 20))
    y = (X[:, :3].sum(1) + rng.normal(0, 1.5, 120) > 0).astype(int)
    wide = np.repeat(X, 10, axis=1)
    for svm in ({"kernel": "linear", "C": 0.05}, {"kernel": "rbf", "C": 3.0, "gamma": 0.2}):
        unit = {**svm, "scale": "unit"}
        a = make_pipeline(unit).fit(X[:90], y[:90]).decision_function(X[90:])
        b = make_pipeline(unit).fit(wide[:90], y[:90]).decision_function(wide[90:])
        assert np.allclose(a, b, atol=1e-8)
        a = make_pipeline(svm).fit(X[:90], y[:90]).decision_function(X[90:])
        b = make_pipeline(svm).fit(wide[:90], y[:90]).decision_function(wide[90:])
        assert not np.allclose(a, b, atol=1e-3)


def _one_trial_study(tmp_path: Path, prepared: Path, params: dict) -> tuple[Path, dict]:
    """A study whose only trial is ``params`` (librosa, speaker_norm, scale-free), exported."""
    space = {
        "feature_set": {"type": "categorical", "choices": ["librosa"]},
        "speaker_norm": {"type": "categorical", "choices": [True]},
        "kernel": {"type": "categorical", "choices": [params["kernel"]]},
        "C": {"type": "float", "low": 0.001, "high": 10000.0, "log": True},
    }
    if "gamma" in params:
        space["gamma"] = {"type": "float", "low": 0.0001, "high": 10.0, "log": True}
    spec = write_spec(
        tmp_path / "svm.toml", data={"corpus": str(prepared)}, pruner={"type": "none"}
    )
    _with_space(spec, space)
    db = tmp_path / "s.db"
    optuna.create_study(study_name="svm", storage=f"sqlite:///{db}", direction="maximize")
    optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").enqueue_trial(
        {"feature_set": "librosa", "speaker_norm": True, **params}
    )
    run = CliRunner()
    res = run.invoke(cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "best.json"
    args = ["export", "--study", "svm", "--storage", str(db), "--out", str(out)]
    assert run.invoke(cli, [*args, "--format", "json"]).exit_code == 0
    return out, json.loads(out.read_text())


@pytest.mark.parametrize(
    "params",
    [{"kernel": "linear", "C": 0.7}, {"kernel": "rbf", "C": 20.0, "gamma": 0.05}],
    ids=["linear", "rbf"],
)
def test_export_retrained_through_plain_scaler_and_svc_gives_its_fold_scores(
    tmp_path: Path, prepared: Path, params: dict
) -> None:
    _, doc = _one_trial_study(tmp_path, prepared, params)
    cfg = doc["config"]
    assert cfg["svm"]["scale"] == "unit" and cfg["svm"]["C"] == params["C"]
    corpus = load_corpus(prepared)
    X = corpus_features(corpus, FeatureSettings(**cfg["features"]))
    y = corpus.label_ids
    got = []
    for fold in corpus_folds(corpus, 6):
        Xs = StandardScaler().fit_transform(X[fold.train])
        scale = 1.0 / (Xs.shape[1] * Xs.var())  # scikit-learn's gamma="scale"
        C = params["C"] * (scale if params["kernel"] == "linear" else 1.0)
        gamma = params.get("gamma", 1.0) * scale
        plain = sk_pipeline(
            StandardScaler(),
            SVC(kernel=params["kernel"], C=C, gamma=gamma, class_weight="balanced"),
        ).fit(X[fold.train], y[fold.train])
        acc = fold_scores(y[fold.valid], plain.predict(X[fold.valid]), len(corpus.labels))
        got.append(round(acc["accuracy"], 6))
    # Fold by fold, what the study measured is what scikit-learn's own SVC gives.
    assert got == doc["fold_scores"]["accuracy"]


def test_train_saves_every_step_and_predict_applies_them(
    tmp_path: Path, prepared: Path, synth_src: Path
) -> None:
    path, doc = _one_trial_study(tmp_path, prepared, {"kernel": "linear", "C": 0.7})
    out, run = tmp_path / "model", CliRunner()
    res = run.invoke(cli, ["train", "--config", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    pipe = joblib.load(out / "model.joblib").estimator_
    # Imputation, scaling and the unit-norm factor are fitted steps of the saved model.
    assert [name for name, _ in pipe.steps] == ["finite", "impute", "scale", "unit", "svc"]
    assert not (out / "impute.npy").exists()
    corpus = load_corpus(prepared)
    Xs = StandardScaler().fit_transform(
        corpus_features(corpus, FeatureSettings(**doc["config"]["features"]))
    )
    meta = json.loads((out / "hpo.json").read_text())
    absolute = meta["svc_on_standardised_features"]
    assert absolute["C"] == pytest.approx(0.7 / (Xs.shape[1] * Xs.var()), rel=1e-9)
    # All of a training speaker's clips: its speaker normalisation is the one it trained with.
    clips = [str(p) for p in sorted((synth_src / "Actor_05").glob("*.wav"))]
    given = ["--speaker-norm-from", "given"]  # a transductive model: the clips' own statistics
    res = run.invoke(cli, ["predict", "--model", str(out), *clips, *given, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    probs = np.array(list(doc["predictions"].values()))
    assert probs.shape == (16, len(corpus.labels)) and np.allclose(probs.sum(1), 1, atol=1e-4)
    # The model separates the emotions it was trained on (these clips among them): each
    # clip's predicted label is its own, and the probabilities follow the clip.
    truth = {c.source: c.label for c in corpus.clips}
    want = [truth[str(Path(c).relative_to(synth_src))] for c in clips]
    got = [doc["predicted"][c] for c in clips]
    assert sum(g == w for g, w in zip(got, want, strict=True)) >= 13, (got, want)  # 14 seen
    assert len(set(got)) == 8  # every emotion, not one answer for all
    assert len({tuple(p.round(3)) for p in probs}) == len(clips)  # each clip its own
    # The text names each clip's label (the SVC's decision) with that label's probability.
    res = run.invoke(cli, ["predict", "--model", str(out), *clips, *given])
    assert res.exit_code == 0, res.output
    said = (" ", "note:", "speaker norm:", "warning:")
    heads = [line for line in res.output.splitlines() if not line.startswith(said)]
    assert heads == [
        f"{c}: {doc['predicted'][c]} (p={p[corpus.labels.index(doc['predicted'][c])]:.2f})"
        for c, p in zip(clips, probs, strict=True)
    ]
    # A damaged model file is one line, not a traceback.
    (out / "model.joblib").write_bytes(b"not a pickle at all")
    res = run.invoke(cli, ["predict", "--model", str(out), *clips, *given])
    assert res.exit_code == 2 and "model.joblib: cannot be loaded" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_study_files_without_scale_keep_absolute_c_and_gamma(tmp_path: Path) -> None:
    old = write_spec(tmp_path / "old.toml", svm={"class_weight": "balanced"})
    raw = old.read_text().replace('scale = "unit"\n', "")
    old.write_text(raw)
    spec = load_spec(old)
    assert spec.settings.svm.scale == "absolute"
    svm = spec.settings.merged({"kernel": "rbf", "C": 2.0, "gamma": 0.001})["svm"]
    pipe = make_pipeline(svm)
    # The pre-#17 pipeline: scaler then an SVC with exactly these C and gamma.
    assert [n for n, _ in pipe.steps] == ["finite", "impute", "scale", "svc"]
    assert (pipe[-1].C, pipe[-1].gamma) == (2.0, 0.001)


def test_gamma_auto_has_no_scale_free_meaning(tmp_path: Path) -> None:
    bad = write_spec(tmp_path / "auto.toml", svm={"gamma": "auto"})
    res = CliRunner().invoke(cli, ["run", "--study", str(bad), "--storage", str(tmp_path / "s.db")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert f"{bad}: [svm]: 'gamma' = 'auto' has no scale-free meaning" in res.output
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(
    ("space", "svm", "needle"),
    [
        ({"type": "categorical", "choices": ["all", 0]}, {}, "[space.select_k] choice 0 is not"),
        ({"type": "float", "low": 10.0, "high": 99.0}, {}, "[space.select_k] choice 10.0 is not"),
        (None, {"select_k": -5}, "[svm]: 'select_k' must be a positive integer or 'all'"),
    ],
)
def test_select_k_is_all_or_a_positive_count(
    tmp_path: Path, space: dict | None, svm: dict, needle: str
) -> None:
    bad = write_spec(tmp_path / "k.toml", svm=svm)
    if space is not None:
        raw = tomllib.loads(bad.read_text())
        _with_space(bad, {**raw["space"], "select_k": space})
    res = CliRunner().invoke(cli, ["run", "--study", str(bad), "--storage", str(tmp_path / "s.db")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert f"{bad}: {needle}" in res.output
