"""Feature sets: librosa, openSMILE eGeMAPS and ComParE; cached per set, as extracted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.kinds.svm.config import FeatureSettings
from hpo.kinds.svm.features import cache_path, load_features
from tests.helpers import write_spec


def test_each_set_has_its_dimensions_and_its_own_cache(few_clips: Path) -> None:
    corpus = load_corpus(few_clips)
    dims = {"librosa": 403, "egemaps": 88, "compare": 6373}
    paths = set()
    for name, d in dims.items():
        s = FeatureSettings(set=name)
        X = load_features(corpus, s)
        assert X.shape == (len(corpus.clips), d) and X.dtype == np.float32
        assert cache_path(corpus, s).is_file()
        paths.add(cache_path(corpus, s))
    assert len(paths) == 3
    # openSMILE's sets ignore librosa's settings: same cache whatever n_mfcc says.
    assert cache_path(corpus, FeatureSettings(set="egemaps", n_mfcc=13)) == cache_path(
        corpus, FeatureSettings(set="egemaps")
    )


def test_the_chosen_feature_set_and_normalisation_follow_export_train_predict(
    tmp_path: Path, few_clips: Path
) -> None:
    spec = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(few_clips)},
        space={
            "feature_set": {"type": "categorical", "choices": ["egemaps"]},
            "speaker_norm": {"type": "categorical", "choices": [False]},
        },
    )
    db, run = tmp_path / "s.db", CliRunner()
    # A linear kernel at C = 1 first (TPE's random start might pick a flat C = 0.01 one),
    # so that the predictions below can be held to the labels.
    optuna.create_study(study_name="svm", storage=f"sqlite:///{db}", direction="maximize")
    optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").enqueue_trial(
        {"kernel": "linear", "C": 1.0}, skip_if_exists=True
    )
    args = ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
    assert run.invoke(cli, args).exit_code == 0
    best = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").best_trial
    assert best.params["feature_set"] == "egemaps" and best.params["speaker_norm"] is False
    cfg = tmp_path / "best.json"
    res = run.invoke(
        cli,
        ["export", "--study", "svm", "--storage", str(db), "--out", str(cfg), "--format", "json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(cfg.read_text())
    assert doc["config"]["features"]["set"] == "egemaps"
    assert doc["config"]["features"]["speaker_norm"] == "off"  # an old false, named
    out = tmp_path / "model"
    assert run.invoke(cli, ["train", "--config", str(cfg), "--out", str(out)]).exit_code == 0
    src = few_clips.parent / "src"
    clips = [str(p) for p in sorted((src / "Actor_05").glob("*.wav"))]  # one per emotion
    for clip in clips[:1], clips:  # one clip is enough without speaker_norm
        res = run.invoke(cli, ["predict", "--model", str(out), *clip, "--json"])
        assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    probs = np.array([r["predictions"][c] for c in clips])
    assert probs.shape == (8, 8) and np.allclose(probs.sum(1), 1, atol=1e-4)
    # Clips the model was trained on: it tells their emotions apart, and its probabilities
    # follow the clip (a model ignoring its input would give one row for all).
    truth = {c.source: c.label for c in load_corpus(few_clips).clips}
    want = [truth[str(Path(c).relative_to(src))] for c in clips]
    got = [r["predicted"][c] for c in clips]
    assert sum(g == w for g, w in zip(got, want, strict=True)) >= 5, (got, want)  # 6 seen
    assert len({tuple(p.round(3)) for p in probs}) == len(clips)
