"""The w2v study end to end on the tiny random-init model (CPU, offline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.trial.predictions import of_trial
from tests.helpers import ROOT, write_spec
from tests.kinds.w2v.settings import MAX_SECONDS, TINY_LAYERS


def _spec(tmp_path: Path, prepared: Path, batch_size: int = 16, **space) -> Path:
    return write_spec(
        tmp_path / "w2v.toml",
        base="w2v-tiny",
        data={"corpus": str(prepared)},
        training={
            "epochs": 2.0,
            "batch_size": batch_size,
            "max_seconds": MAX_SECONDS,
            "tensorboard_dir": str(tmp_path / "runs"),
            "logging_steps": 1,
        },
        space={
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-3},
            "warmup_ratio": {"type": "float", "low": 0.1, "high": 0.1},
            "max_grad_norm": {"type": "categorical", "choices": ["off"]},
            "pooling": {"type": "categorical", "choices": ["stats"]},
            **space,
        },
        pruner={"type": "none"},
    )


def _scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory, w2v_corpus: Path) -> dict:
    """One w2v-tiny trial, run once for the tests that read it: its database, what ``hpo
    run`` printed, and how often the backbone was read."""
    from hpo.kinds.w2v import backbone

    tmp = tmp_path_factory.mktemp("tiny-study")
    calls = {"load_backbone": 0}
    load = backbone.load_backbone

    def counting_load(*a, **k):
        calls["load_backbone"] += 1
        return load(*a, **k)

    db = tmp / "s.db"
    # 20 updates an epoch: enough to see each phase of the schedule in every fold.
    spec = _spec(tmp, w2v_corpus, batch_size=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # anything written relative to the working directory stays here
        mp.setattr(backbone, "load_backbone", counting_load)
        res = CliRunner().invoke(
            cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)]
        )
    assert res.exit_code == 0, res.output
    return {"db": db, "output": res.output, "calls": calls, "corpus": w2v_corpus}


@pytest.mark.slow
def test_tiny_trial_six_folds_tensorboard_and_schedule(tiny_study: dict) -> None:
    db, calls = tiny_study["db"], tiny_study["calls"]
    # A worker reads the backbone from disk once, not once per fold.
    assert calls == {"load_backbone": 1}
    output = tiny_study["output"]
    assert "RANDOMLY INITIALISED" in output and "SYNTHETIC" in output
    (t,) = optuna.load_study(study_name="w2v-tiny", storage=f"sqlite:///{db}").trials
    assert t.state == optuna.trial.TrialState.COMPLETE
    assert len(t.user_attrs["fold_accuracy"]) == 6 and None not in t.user_attrs["fold_accuracy"]
    assert t.user_attrs["random_init_model"] is True
    # Per-clip predictions and probabilities kept, as the six folds scored them.
    kept, y = of_trial(t), load_corpus(tiny_study["corpus"]).label_ids
    assert sorted(kept.clips.tolist()) == list(range(len(y)))
    assert np.allclose(kept.proba.sum(1), 1, atol=1e-2)
    for f, acc in enumerate(t.user_attrs["fold_accuracy"]):
        mine = kept.folds == f
        assert (kept.pred[mine] == y[kept.clips[mine]]).mean() == pytest.approx(acc, abs=1e-6)
    # With the epoch stage off the screening fold's curve is still kept (for replays):
    # one value per epoch, the last one the fold's score.
    curve = t.user_attrs["screen_curve"]
    assert len(curve) == 2 and curve[-1] == pytest.approx(t.user_attrs["fold_uar"][0])  # metric
    tb = Path(t.user_attrs["tensorboard"])
    warmup, hold, decay = t.user_attrs["schedule_phases"]
    total = warmup + hold + decay
    assert (warmup, hold) == (round(0.1 * total), round(0.4 * total))
    for fold in range(6):
        run = tb / f"fold-{fold}"
        lr = dict(_scalars(run, "train/learning_rate"))
        peak = max(lr.values())
        assert peak == pytest.approx(1e-3, rel=1e-6)
        # 10/40/50: rising until the end of warm-up, flat through the hold, then falling.
        rising = [s for s, v in sorted(lr.items()) if s <= warmup]
        assert all(lr[a] < lr[b] for a, b in zip(rising, rising[1:], strict=False))
        assert all(v == pytest.approx(peak) for s, v in lr.items() if warmup < s <= warmup + hold)
        tail = [v for s, v in sorted(lr.items()) if s > warmup + hold]
        assert tail == sorted(tail, reverse=True) and tail[-1] < 0.1 * peak
        # The gradient norm is logged even with clipping off.
        assert len(_scalars(run, "train/grad_norm")) > 0
        # Each fold validates once per epoch (2 epochs), and its last validation is its
        # score: a validation run again after training would log a third point.
        uar = _scalars(run, "eval/uar")
        assert len(uar) == 2
        assert uar[-1][1] == pytest.approx(t.user_attrs["fold_uar"][fold], abs=1e-6)


@pytest.mark.slow
def test_diverging_run_is_pruned_with_its_reason_and_the_study_goes_on(
    tmp_path: Path, w2v_corpus: Path
) -> None:
    spec = _spec(tmp_path, w2v_corpus, learning_rate={"type": "float", "low": 1e6, "high": 1e6})
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    trials = optuna.load_study(study_name="w2v-tiny", storage=f"sqlite:///{db}").trials
    assert len(trials) == 2
    for t in trials:
        assert t.state == optuna.trial.TrialState.PRUNED
        assert t.user_attrs["pruned_reason"].startswith("diverged: non-finite")


@pytest.mark.slow
def test_export_train_predict_w2v_and_svm(
    tmp_path: Path, tiny_study: dict, prepared: Path, synth_src: Path
) -> None:
    run = CliRunner()
    db = tmp_path / "s.db"
    shutil.copyfile(tiny_study["db"], db)  # the w2v-tiny study; the svm study joins it here
    one_set = {  # the feature set does not matter here: one keeps the extraction short
        "feature_set": {"type": "categorical", "choices": ["librosa"]},
        "speaker_norm": {"type": "categorical", "choices": [True]},
    }
    svm = write_spec(tmp_path / "svm.toml", data={"corpus": str(prepared)}, space=one_set)
    assert (
        run.invoke(
            cli, ["run", "--study", str(svm), "--n-trials", "2", "--storage", str(db)]
        ).exit_code
        == 0
    )
    # Eight clips of one speaker: the SVM study normalises features per speaker.
    clips = [str(p) for p in sorted((synth_src / "Actor_03").glob("*.wav"))[:8]]
    for name in ("w2v-tiny", "svm"):
        cfg = tmp_path / f"{name}-best.toml"
        res = run.invoke(cli, ["export", "--study", name, "--storage", str(db), "--out", str(cfg)])
        assert res.exit_code == 0, res.output
        out = tmp_path / "models" / name
        res = run.invoke(cli, ["train", "--config", str(cfg), "--out", str(out)])
        assert res.exit_code == 0, res.output
        meta = json.loads((out / "hpo.json").read_text())
        assert meta["kind"] == name.split("-")[0] and meta["trained_on"]["synthetic"] is True
        if name == "w2v-tiny":
            assert (out / "model.safetensors").is_file()
            assert (out / "preprocessor_config.json").is_file()
            head = json.loads((out / "head.json").read_text())
            assert head["labels"][0] == "neutral" and head["pooling"] == "stats"
            assert meta["backbone"] == "wav2vec2"  # the family, recorded for predict
        # The SVM (transductive): the given clips' own statistics, as its CV had them.
        given = ["--speaker-norm-from", "given"] if name == "svm" else []
        res = run.invoke(cli, ["predict", "--model", str(out), *clips, *given, "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert list(doc["predictions"]) == clips
        probs = np.array([doc["predictions"][c] for c in clips])
        assert probs.shape == (8, 8) and np.allclose(probs.sum(1), 1, atol=1e-4)
        assert doc["labels"][0] == "neutral"
        # The probabilities follow the clip: a model that ignored its input (or a predict
        # that fed it the same clip each time) gives one row for all eight.
        assert len({tuple(p.round(6)) for p in probs}) == len(clips), probs
        if name == "w2v-tiny":  # the classifier's label is its most probable one
            assert [doc["predicted"][c] for c in clips] == [
                doc["labels"][i] for i in probs.argmax(1)
            ]
    # Per-speaker normalisation cannot work on one clip: a clear refusal, not a guess.
    svm_model = ["predict", "--model", str(tmp_path / "models" / "svm"), clips[0]]
    res = run.invoke(cli, [*svm_model, "--speaker-norm-from", "given"])
    assert res.exit_code == 2 and "at least 8 clips of one speaker" in res.output
    # A missing clip among enough of them: named, not a traceback.
    missing = [*clips[:7], str(tmp_path / "nope.wav"), "--speaker-norm-from", "given"]
    res = run.invoke(cli, [*svm_model[:3], *missing])
    assert res.exit_code == 2 and "nope.wav" in res.output


@pytest.mark.slow
@pytest.mark.heavy
def test_the_epoch_stage_stops_a_hopeless_trial_inside_its_first_fold(
    tmp_path: Path, prepared_copy: Path
) -> None:
    # All 384 clips (validation folds of 64): on the 96 of w2v_corpus the tiny model's
    # curves are too close to tell a learning trial from a hopeless one.
    prepared = prepared_copy
    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec
    from hpo.study.open import open_study
    from hpo.study.run import run_study

    spec = load_spec(
        write_spec(
            tmp_path / "w2v.toml",
            base="w2v-tiny",
            data={"corpus": str(prepared)},
            training={"epochs": 3.0, "batch_size": 16, "tensorboard_dir": str(tmp_path / "r")}
            | {"max_seconds": MAX_SECONDS},
            space={"learning_rate": {"type": "float", "low": 1e-9, "high": 1e-2, "log": True}},
            pruner={"type": "none", "epoch_stage": True, "screen_fold": 2}
            | {"epoch_startup_trials": 1, "epoch_percentile": 50.0, "epoch_warmup": 1},
        )
    )
    db = f"sqlite:///{tmp_path / 's.db'}"
    study = open_study(spec, db, load_corpus(prepared))
    study.enqueue_trial({"learning_rate": 1e-2})  # learns
    study.enqueue_trial({"learning_rate": 1e-9})  # cannot learn anything in 3 epochs
    run_study(spec, db, n_trials=2)
    good, bad = optuna.load_study(study_name="w2v-tiny", storage=db).trials
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert None not in good.user_attrs["fold_accuracy"]  # the best is scored on every fold
    assert len(good.user_attrs["screen_curve"]) == 3 and good.user_attrs["epochs_run"] == 18
    assert bad.state == optuna.trial.TrialState.PRUNED
    assert bad.user_attrs["pruned_reason"].startswith("epoch stage:")
    # Stopped inside the screening fold, which every trial trains first.
    assert bad.user_attrs["pruned_at"]["fold"] == 2
    assert bad.user_attrs["epochs_run"] < 3
    assert [v is None for v in bad.user_attrs.get("fold_accuracy", [None] * 6)] == [True] * 6
    epoch = round(bad.user_attrs["pruned_at"]["epoch"])
    assert bad.user_attrs["screen_curve"][epoch - 1] < good.user_attrs["screen_curve"][epoch - 1]


@pytest.mark.slow
def test_devices_pins_a_single_worker_run(tmp_path: Path, w2v_corpus: Path) -> None:
    # One worker, --devices 0: the kind's own checks load torch before any trial; the device
    # must still be chosen before CUDA starts. A fresh process, as a user runs it.
    spec = write_spec(
        tmp_path / "probe.toml",
        base="w2v-probe",
        data={"corpus": str(w2v_corpus)},
        model={"name": "tiny"},
        training={"epochs": 1.0, "max_seconds": MAX_SECONDS, "tensorboard_dir": str(tmp_path)},
        space={"pooling": {"type": "categorical", "choices": ["mean"]}, **TINY_LAYERS},
    )
    db = tmp_path / "s.db"
    env = {**os.environ, "HPO_MODELS": os.environ["HPO_MODELS"]}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "hpo", "run", "--study", str(spec), "--n-trials", "1"]
    res = subprocess.run(
        [*cmd, "--storage", str(db), "--devices", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    (t,) = optuna.load_study(study_name="w2v-probe", storage=f"sqlite:///{db}").trials
    assert t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["devices"] == "0"
