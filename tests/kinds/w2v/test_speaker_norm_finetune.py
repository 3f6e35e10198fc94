"""Fine-tuning normalises the frozen CNN's output frames per speaker with the SVM's and the
probe's modes and enrolment rule (``hpo.kinds.speaker_norm``), cached or not, in a study,
in ``hpo train`` and in ``hpo predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import tomli_w
import torch
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.kinds.speaker_norm import SpeakerNorm, corpus_groups
from hpo.results.export import _clean
from tests.helpers import write_spec
from tests.kinds.w2v.settings import MAX_SECONDS

ENROL = SpeakerNorm("enrolment", "clips", 8)


def _model_and_cache(corpus):
    from hpo.kinds.w2v.backbone import new_classifier
    from hpo.kinds.w2v.bank import FrameBank
    from hpo.kinds.w2v.clips import load_waves, max_samples
    from hpo.kinds.w2v.finetune.cache import load_or_build

    waves, prep = load_waves(corpus, "tiny", max_samples(MAX_SECONDS))
    model = new_classifier("tiny", {"pooling": "mean", "dropout": 0.0}, 0, len(corpus.labels))
    cache = load_or_build(model, waves, corpus, prep, torch.device("cpu"))
    model.bank = FrameBank(cache, torch.device("cpu"))
    return model.eval(), waves, cache


def _spec(tmp_path: Path, corpus: Path, space: dict | None = None, **model) -> Path:
    return write_spec(
        tmp_path / "ft.toml",
        base="w2v-tiny",
        data={"corpus": str(corpus)},
        model=model,
        training={
            "epochs": 1.0,
            "max_seconds": MAX_SECONDS,
            "tensorboard_dir": str(tmp_path / "runs"),
        },
        space={
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-3},
            "pooling": {"type": "categorical", "choices": ["mean"]},
            **(space or {}),
        },
        pruner={"type": "none", "epoch_stage": False},
    )


def test_cnn_frames_are_normalised_by_other_enrolment_clips(w2v_corpus: Path) -> None:
    from hpo.kinds.w2v.finetune.speaker import cache_moments, corpus_affine

    corpus = load_corpus(w2v_corpus)
    model, _, cache = _model_and_cache(corpus)
    moments = cache_moments(cache)
    shift, factor = corpus_affine(ENROL, corpus, moments)
    t_shift, t_factor = corpus_affine(SpeakerNorm("transductive"), corpus, moments)
    assert shift.shape == (len(corpus.clips), cache.frames.shape[1])
    groups = corpus_groups(ENROL, corpus)
    for scored, stats in groups[:8]:
        assert not set(scored.tolist()) & set(stats.tolist())  # never the scored clip
        i = int(scored[0])
        pool = np.concatenate([cache.get(j) for j in stats]).astype(np.float64)
        # The statistics are those of the other clips' frames, not of the clip's speaker
        # with the clip: what transductive normalisation would use is something else.
        np.testing.assert_allclose(shift[i], pool.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(factor[i], 1 / pool.std(0), rtol=1e-3)
        assert not np.allclose(shift[i], t_shift[i], rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            got, n = model.input_frames(
                clip_ids=torch.tensor([i]),
                frame_shift=torch.from_numpy(shift[[i]]),
                frame_scale=torch.from_numpy(factor[[i]]),
            )
        want = (cache.get(i) - pool.mean(0)) / pool.std(0)
        assert int(n[0]) == len(want)
        np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-3, atol=1e-3)
        # Over the frames of the statistics clips, normalised frames have mean 0 and std 1.
        z = (pool - shift[i]) * factor[i]
        np.testing.assert_allclose(z.mean(0), 0, atol=1e-3)
        np.testing.assert_allclose(z.std(0), 1, atol=1e-3)


def test_cached_and_uncached_paths_give_the_same_normalised_frames(w2v_corpus: Path) -> None:
    from hpo.kinds.w2v.finetune.data import Collator
    from hpo.kinds.w2v.finetune.speaker import cache_moments, cnn_moments, corpus_affine

    corpus = load_corpus(w2v_corpus)
    model, waves, cache = _model_and_cache(corpus)
    cached_m = cache_moments(cache)
    live_m = cnn_moments(model, waves, torch.device("cpu"))  # no cache: the CNN run once
    for a, b in zip(cached_m, live_m, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    affine = corpus_affine(ENROL, corpus, live_m)
    items = [{"clip": i, "labels": 0} for i in (0, 5, 17, 40)]  # clips of several speakers
    batches = [Collator(None, affine)(items), Collator(waves, affine)(items)]
    assert "clip_ids" in batches[0] and "input_values" in batches[1]
    with torch.no_grad():
        (f0, n0), (f1, n1) = (
            model.input_frames(**{k: v for k, v in b.items() if k != "labels"}) for b in batches
        )
    assert n0.tolist() == n1.tolist()
    valid = torch.arange(f0.shape[1])[None] < n0[:, None]
    np.testing.assert_allclose(f0[valid].numpy(), f1[valid].numpy(), rtol=1e-3, atol=1e-3)
    raw, _ = model.input_frames(clip_ids=torch.tensor([0, 5, 17, 40]))
    assert not torch.allclose(raw, f0, atol=1e-2)  # normalised, not passed through
    assert float(f0[valid].abs().max()) > 0 and float(f0[~valid].abs().max()) == 0


def _trials(db: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="w2v-tiny", storage=f"sqlite:///{db}")
    return sorted(study.trials, key=lambda t: t.number)


def test_a_fine_tuning_study_records_the_mode(tmp_path: Path, w2v_corpus: Path) -> None:
    spec = _spec(tmp_path, w2v_corpus, speaker_norm="enrolment")
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    (trial,) = _trials(db)
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["speaker_norm"] == "enrolment (8 clips)"
    res = CliRunner().invoke(cli, ["status", "--storage", str(db)])
    assert "    speaker norm: enrolment (8 clips)" in res.output.splitlines()


@pytest.mark.slow  # about 15 s: two trials of 6 folds
def test_a_fine_tuning_study_searches_the_modes(tmp_path: Path, w2v_corpus: Path) -> None:
    modes = {"speaker_norm": {"type": "categorical", "choices": ["off", "enrolment"]}}
    spec = _spec(tmp_path, w2v_corpus, modes)
    db = tmp_path / "s.db"
    study = optuna.create_study(
        study_name="w2v-tiny", storage=f"sqlite:///{db}", direction="maximize"
    )
    for mode in ("off", "enrolment"):
        study.enqueue_trial({"learning_rate": 1e-3, "pooling": "mean", "speaker_norm": mode})
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    trials = _trials(db)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    assert [t.user_attrs["speaker_norm"] for t in trials] == ["off", "enrolment (8 clips)"]
    # Same seed, same clips, same folds: only the normalised inputs tell the trials apart.
    assert trials[0].user_attrs["fold_accuracy"] != trials[1].user_attrs["fold_accuracy"]


def test_a_too_small_speaker_is_refused_before_any_trial(tmp_path: Path, w2v_corpus: Path) -> None:
    # 4 clips a speaker: 3 others at most, fewer than enrolment = "neutral" can have.
    spec = _spec(tmp_path, w2v_corpus, speaker_norm="enrolment", enrolment="neutral")
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "1", "--storage", str(db)]
    )
    assert res.exit_code != 0
    assert "speaker_norm = 'enrolment' takes statistics from at least 2" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("feature_cache", [True, False])
def test_a_saved_fine_tuned_enrolment_model_normalises_as_it_was_trained(
    tmp_path: Path, w2v_corpus: Path, synth_src: Path, feature_cache: bool
) -> None:
    """'hpo train' fine-tunes on normalised CNN frames (cached or run each epoch); 'hpo
    predict' refuses the model without statistics, and with enrolment clips normalises
    their CNN frames as the cached frames were."""
    from hpo.corpus.audio import load_clip
    from hpo.kinds import get_kind
    from hpo.kinds.w2v.finetune.speaker import cache_moments, corpus_affine
    from hpo.kinds.w2v.model import load_saved

    spec = load_spec(_spec(tmp_path, w2v_corpus, speaker_norm="enrolment"))
    cfg = {"kind": "w2v", "name": "ft", "data": {"corpus": str(w2v_corpus)}}
    cfg |= spec.settings.merged({"learning_rate": 1e-3, "pooling": "mean"})
    cfg["training"]["feature_cache"] = feature_cache
    assert cfg["model"]["speaker_norm"] == "enrolment"
    export = tmp_path / "ft-best.toml"
    export.write_text(tomli_w.dumps(_clean({"study": "ft", "config": cfg})))
    out = tmp_path / "model"
    run = CliRunner()
    res = run.invoke(cli, ["train", "--config", str(export), "--out", str(out)])
    assert res.exit_code == 0, res.output
    clips = [str(p) for p in sorted((synth_src / "Actor_07").glob("*.wav"))]
    res = run.invoke(cli, ["predict", "--model", str(out), clips[0]])
    assert res.exit_code == 2 and "give --enrol DIR_OR_FILE" in res.output, res.output
    enrol = [a for c in clips[2:6] for a in ("--enrol", c)]
    res = run.invoke(cli, ["predict", "--model", str(out), *clips[:2], *enrol])
    assert res.exit_code == 0, res.output
    assert "speaker norm: enrolment (8 clips); statistics from 4 enrolment clip(s)" in res.output
    # The saved model on corpus clips with the study's groups = the model on the cache.
    corpus = load_corpus(w2v_corpus)
    first = corpus.speakers[0]
    every = corpus_groups(ENROL, corpus)
    groups = [g for g in every if corpus.speakers[g[0][0]] == first]
    keep = sorted({int(i) for g in groups for part in g for i in part})
    at = {c: k for k, c in enumerate(keep)}
    local = [(np.array([at[i] for i in s]), np.array([at[i] for i in t])) for s, t in groups]
    waves = [load_clip(str(corpus.clip_path(corpus.clips[i]))) for i in keep]
    saved = get_kind("w2v").predict(out, {"config": cfg, "kind": "w2v"}, waves, local)
    model, _ = load_saved(out)
    _, _, cache = _model_and_cache(corpus)
    from hpo.kinds.w2v.bank import FrameBank

    model.bank = FrameBank(cache, torch.device("cpu"))
    shift, factor = corpus_affine(ENROL, corpus, cache_moments(cache))
    scored = np.sort(np.concatenate([s for s, _ in groups]))
    with torch.no_grad():
        logits = model.eval()(
            clip_ids=torch.as_tensor(scored),
            frame_shift=torch.from_numpy(shift[scored]),
            frame_scale=torch.from_numpy(factor[scored]),
        ).logits
    np.testing.assert_allclose(saved, torch.softmax(logits, -1).numpy(), atol=2e-3)
    with torch.no_grad():  # the same model on the raw frames: another answer
        raw = model(clip_ids=torch.as_tensor(scored)).logits
    assert not np.allclose(saved, torch.softmax(raw, -1).numpy(), atol=2e-3)
