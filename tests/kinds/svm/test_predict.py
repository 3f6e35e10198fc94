"""``hpo predict`` labels what cross-validation scored: the SVC's decision, not the arg-max of
probabilities, which are calibrated on speaker folds (no speaker on both sides)."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import joblib
import numpy as np
import optuna
import pytest
import tomli_w
from click.testing import CliRunner
from sklearn.model_selection import check_cv

from hpo.cli import cli
from hpo.corpus.folds import assign_folds
from hpo.corpus.manifest import Corpus, load_corpus, write_corpus
from hpo.kinds import load_spec
from hpo.kinds.svm.config import FeatureSettings
from hpo.kinds.svm.features import cache_path, load_features
from hpo.kinds.svm.kernels import kernels, precomputed_svc
from hpo.kinds.svm.objective import SvmObjective
from hpo.trial.metrics import fold_scores
from tests.helpers import write_spec

# A weak linear SVM: many borderline clips, where the arg-max of calibrated probabilities and
# the SVC's decision part ways (the old 'hpo predict' printed the former).
PARAMS = {"feature_set": "librosa", "kernel": "linear", "C": 0.01}
HELD_OUT = 0  # the study's fold 0: actors 1-4


def _study(tmp: Path, prepared: Path, speaker_norm: bool) -> tuple[Path, Path]:
    """A one-trial study of PARAMS on the session corpus, exported; (study file, export)."""
    spec = write_spec(tmp / "svm.toml", data={"corpus": str(prepared)}, pruner={"type": "none"})
    raw = tomllib.loads(spec.read_text())
    raw["space"] = {
        "feature_set": {"type": "categorical", "choices": ["librosa"]},
        "speaker_norm": {"type": "categorical", "choices": [speaker_norm]},
        "kernel": {"type": "categorical", "choices": ["linear"]},
        "C": {"type": "float", "low": 0.001, "high": 10.0, "log": True},
    }
    spec.write_text(tomli_w.dumps(raw))
    db = tmp / "s.db"
    optuna.create_study(study_name="svm", storage=f"sqlite:///{db}", direction="maximize")
    optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").enqueue_trial(
        {**PARAMS, "speaker_norm": speaker_norm}
    )
    run = CliRunner()
    res = run.invoke(cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)])
    assert res.exit_code == 0, res.output
    out = tmp / "best.json"
    args = ["export", "--study", "svm", "--storage", str(db), "--out", str(out), "--format", "json"]
    assert run.invoke(cli, args).exit_code == 0
    return spec, out


def _training_corpus(corpus: Corpus, keep: np.ndarray, s: FeatureSettings, out: Path) -> Path:
    """The clips ``keep`` as a prepared corpus of their own (folds cut again by the prepare
    rule), sharing the session corpus's audio and its features, so none is extracted."""
    clips = [corpus.clips[i] for i in keep]
    ids = corpus.speakers[keep].tolist()
    speakers = {s: c.gender for s, c in zip(ids, clips, strict=True)}
    fold_of = assign_folds(speakers, 5, speakers)
    clips = [dataclasses.replace(c, fold=fold_of[s]) for s, c in zip(ids, clips, strict=True)]
    out.mkdir()
    write_corpus(out, clips, {k: v for k, v in corpus.meta.items() if k != "format"} | {"folds": 5})
    for top in {Path(c.path).parts[0] for c in clips}:
        (out / top).symlink_to(corpus.root / top)
    sub = load_corpus(out)
    cache_path(sub, s).parent.mkdir(parents=True)
    np.save(cache_path(sub, s), load_features(corpus, s)[keep])
    return out


# A study, 'hpo train' and four 'hpo predict' runs (features of 64 clips) per parameter.
@pytest.fixture(scope="module", params=[False, True], ids=["raw", "speaker_norm"])
def held_out(request, prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Fold 0's training speakers trained on by 'hpo train'; its held-out speakers labelled
    by the cross-validation objective (as it scored them) and by 'hpo predict', one speaker
    per call (predict normalises the clips it is given as one speaker)."""
    tmp = tmp_path_factory.mktemp("held-out")
    spec_path, export = _study(tmp, prepared, request.param)
    corpus = load_corpus(prepared)
    spec = load_spec(spec_path)
    objective = SvmObjective(spec, corpus)
    merged = spec.settings.merged({**PARAMS, "speaker_norm": request.param})
    svm, s = merged["svm"], FeatureSettings(**merged["features"])
    fold = objective.folds[HELD_OUT]
    k_train, k_valid = kernels(svm, objective.gram(s, fold, svm))
    cv_pred = precomputed_svc(svm).fit(k_train, objective.y[fold.train]).predict(k_valid)
    sub = _training_corpus(corpus, fold.train, s, tmp / "train-speakers")
    model, run = tmp / "model", CliRunner()
    res = run.invoke(
        cli, ["train", "--config", str(export), "--out", str(model), "--data", str(sub)]
    )
    assert res.exit_code == 0, res.output
    predicted, probs = {}, {}
    for actor in fold.valid_actors:
        clips = [
            str(corpus.clip_path(corpus.clips[i]))
            for i in fold.valid
            if corpus.speakers[i] == actor
        ]
        # A transductive model's statistics: the speaker's given clips, as in CV.
        given = ["--speaker-norm-from", "given"] if request.param else []
        res = run.invoke(cli, ["predict", "--model", str(model), *clips, *given, "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        predicted |= doc["predicted"]
        probs |= doc["predictions"]
    valid_paths = [str(corpus.clip_path(corpus.clips[i])) for i in fold.valid]
    return {
        "corpus": corpus,
        "sub": load_corpus(sub),
        "fold": fold,
        "recorded": json.loads(export.read_text())["fold_scores"]["accuracy"][HELD_OUT],
        "cv": [corpus.labels[i] for i in cv_pred],
        "cv_ids": cv_pred,
        "predict": [predicted[p] for p in valid_paths],
        "probs": np.array([probs[p] for p in valid_paths]),
        "model": model,
    }


@pytest.mark.slow
def test_predict_labels_held_out_speakers_as_cross_validation_scored_them(held_out: dict) -> None:
    fold, corpus = held_out["fold"], held_out["corpus"]
    # The reproduced fold is the one the study recorded.
    scores = fold_scores(corpus.label_ids[fold.valid], held_out["cv_ids"], len(corpus.labels))
    assert round(scores["accuracy"], 6) == held_out["recorded"]
    # Clip by clip, 'hpo predict' gives the label cross-validation scored.
    assert held_out["predict"] == held_out["cv"]
    # ... which is not always the most probable label: the calibrated probabilities are
    # estimates apart from the decision (so the arg-max would not have been what CV scored).
    most_probable = [corpus.labels[i] for i in held_out["probs"].argmax(1)]
    assert most_probable != held_out["cv"]
    assert np.allclose(held_out["probs"].sum(1), 1, atol=1e-6)


@pytest.mark.slow
def test_calibration_splits_never_put_a_speaker_on_both_sides(held_out: dict) -> None:
    sub = held_out["sub"]
    model = joblib.load(held_out["model"] / "model.joblib")
    calibrator = model if hasattr(model, "cv") else model[-1]  # the old model's last step
    y = sub.label_ids
    splits = list(check_cv(calibrator.cv, y, classifier=True).split(np.zeros((len(y), 1)), y))
    speakers = sub.speakers
    for train, valid in splits:
        assert not set(speakers[train]) & set(speakers[valid])
    # Every clip is calibrated out of fold exactly once, by the training corpus's own folds.
    assert sorted(np.concatenate([v for _, v in splits]).tolist()) == list(range(len(y)))
    assert len(splits) == 5
    meta = json.loads((held_out["model"] / "hpo.json").read_text())
    assert meta["calibration"] == {"method": "sigmoid", "speaker_folds": 5}


def test_train_refuses_a_label_no_other_speaker_fold_has(prepared: Path, tmp_path: Path) -> None:
    """Calibrating on speaker folds needs every label on each fold's training side."""
    corpus = load_corpus(prepared)
    clips = [
        dataclasses.replace(c, label="neutral") if c.label == "calm" and c.fold != 2 else c
        for c in corpus.clips
    ]
    root = tmp_path / "corpus"
    root.mkdir()
    write_corpus(root, clips, {k: v for k, v in corpus.meta.items() if k != "format"})
    (root / "clips").symlink_to(prepared / "clips")
    spec = load_spec(write_spec(tmp_path / "svm.toml"))
    merged = spec.settings.merged({**PARAMS, "speaker_norm": False})
    export = tmp_path / "best.json"
    export.write_text(json.dumps({"config": {**merged, "kind": "svm", "data": {}}}))
    out = tmp_path / "model"
    args = ["train", "--config", str(export), "--data", str(root), "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert (
        f"{root}: label 'calm' is spoken only by speakers of fold 2 (9, 10, 11, 12)" in res.output
    )
    assert not out.exists() and not (root / "cache").exists()
