"""The probe normalises its pooled features per speaker with the SVM's modes and enrolment
rule (``hpo.kinds.speaker_norm``), so the two kinds compare on equal terms."""

from __future__ import annotations

import tomllib
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
from hpo.kinds.w2v.probe.head import ProbeInputs
from hpo.kinds.w2v.probe.objective import build_layer_cache
from tests.helpers import write_spec
from tests.kinds.w2v.settings import MAX_SECONDS

ENROL = SpeakerNorm("enrolment", "clips", 8)


def _spec(tmp_path: Path, corpus: Path, space: dict, **model) -> Path:
    spec = write_spec(
        tmp_path / "probe.toml",
        base="w2v-probe",
        data={"corpus": str(corpus)},
        model={"name": "tiny", **model},
        pruner={"type": "none", "epoch_stage": False},
        training={"epochs": 2.0, "max_seconds": MAX_SECONDS, "tensorboard_dir": str(tmp_path)},
    )
    raw = tomllib.loads(spec.read_text())
    raw["space"] = space
    spec.write_text(tomli_w.dumps(raw))
    return spec


def test_pooled_features_are_standardised_by_the_enrolment_clips(w2v_corpus: Path) -> None:
    corpus = load_corpus(w2v_corpus)
    cache = build_layer_cache(corpus, "tiny", MAX_SECONDS)
    groups = corpus_groups(ENROL, corpus)
    per_speaker = min(np.unique(corpus.speakers, return_counts=True)[1])
    for scored, stats in groups:  # each clip by 8 others of its speaker, never itself
        assert not set(scored.tolist()) & set(stats.tolist())
        assert len(stats) == min(8, per_speaker - 1)
        assert len(set(corpus.speakers[np.concatenate([scored, stats])].tolist())) == 1
    x = ProbeInputs(cache, "mean", -1, groups=groups).x
    assert x is not None
    # Each clip's mean frame, z-scored with the mean and std over every frame of its
    # statistics clips (the layer's frames, per speaker), computed here from the frames.
    frames, o = np.asarray(cache.layer(-1), dtype=np.float64), cache.offsets
    for scored, stats in groups[:8]:
        pool = np.concatenate([frames[o[j] : o[j + 1]] for j in stats])
        want = (cache.means[scored, -1] - pool.mean(0)) / pool.std(0)
        np.testing.assert_allclose(x[scored].cpu().numpy(), want, atol=5e-3, rtol=5e-3)
    raw = ProbeInputs(cache, "mean", -1).x
    assert raw is not None and not torch.allclose(raw.cpu(), x.cpu())


def test_attention_frames_are_standardised_by_the_enrolment_clips_frames(
    w2v_corpus: Path,
) -> None:
    corpus = load_corpus(w2v_corpus)
    cache = build_layer_cache(corpus, "tiny", MAX_SECONDS)
    groups = corpus_groups(ENROL, corpus)
    inputs = ProbeInputs(cache, "attention", -1, groups=groups)
    frames = np.asarray(cache.layer(-1), dtype=np.float64)
    o = cache.offsets
    for scored, stats in groups[:6]:
        i = int(scored[0])
        pool = np.concatenate([frames[o[j] : o[j + 1]] for j in stats])
        want = (frames[o[i] : o[i + 1]] - pool.mean(0)) / pool.std(0)
        got, mask = inputs.batch(torch.tensor([i]))
        assert mask is not None
        np.testing.assert_allclose(got[0][mask[0]].cpu().numpy(), want, atol=2e-3, rtol=2e-3)


def test_a_probe_study_runs_and_records_each_mode(tmp_path: Path, w2v_corpus: Path) -> None:
    space = {
        "pooling": {"type": "categorical", "choices": ["mean"]},
        "learning_rate": {"type": "float", "low": 3e-3, "high": 1e-2, "log": True},
        "speaker_norm": {"type": "categorical", "choices": ["off", "transductive", "enrolment"]},
    }
    spec = _spec(tmp_path, w2v_corpus, space)
    db = tmp_path / "s.db"
    study = optuna.create_study(
        study_name="w2v-probe", storage=f"sqlite:///{db}", direction="maximize"
    )
    for mode in ("off", "transductive", "enrolment"):
        study.enqueue_trial({"pooling": "mean", "learning_rate": 5e-3, "speaker_norm": mode})
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "3", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    trials = sorted(
        optuna.load_study(study_name="w2v-probe", storage=f"sqlite:///{db}").trials,
        key=lambda t: t.number,
    )
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [t.user_attrs["speaker_norm"] for t in trials] == [
        "off",
        "transductive",
        "enrolment (8 clips)",
    ]
    assert len({tuple(t.user_attrs["fold_accuracy"]) for t in trials}) > 1
    res = CliRunner().invoke(cli, ["status", "--storage", str(db)])
    best = max(trials, key=lambda t: t.value)
    assert f"    speaker norm: {best.user_attrs['speaker_norm']}" in res.output.splitlines()


@pytest.mark.slow  # about 10 s: a study-free hpo train of the tiny probe, then predict
def test_a_saved_enrolment_probe_normalises_as_it_was_trained(
    tmp_path: Path, w2v_corpus: Path, synth_src: Path
) -> None:
    """'hpo train' saves the probe; 'hpo predict' refuses it without statistics, and with
    enrolment clips standardises the backbone's features as the layer cache's were."""
    from hpo.corpus.audio import load_clip
    from hpo.kinds import get_kind
    from hpo.kinds.w2v.model import load_saved
    from hpo.kinds.w2v.probe.head import ProbeHead

    one = {"pooling": {"type": "categorical", "choices": ["stats"]}}
    model = {"pooling": "stats", "probe_layer": -1, "speaker_norm": "enrolment"}
    spec = load_spec(_spec(tmp_path, w2v_corpus, one, **model))
    cfg = {"kind": "w2v", "name": "p", "data": {"corpus": str(w2v_corpus)}}
    cfg |= spec.settings.merged({"learning_rate": 3e-3, "warmup_ratio": 0.1})
    export = tmp_path / "p-best.toml"
    export.write_text(tomli_w.dumps({"study": "p", "config": cfg}))
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
    # The saved model on corpus clips with the study's groups = the head on the cache.
    corpus = load_corpus(w2v_corpus)
    first = corpus.speakers[0]  # one speaker's groups: its clips and their statistics
    every = corpus_groups(spec.settings.model.norm, corpus)
    groups = [g for g in every if corpus.speakers[g[0][0]] == first]
    keep = sorted({int(i) for g in groups for part in g for i in part})
    at = {c: k for k, c in enumerate(keep)}
    local = [(np.array([at[i] for i in s]), np.array([at[i] for i in t])) for s, t in groups]
    waves = [load_clip(str(corpus.clip_path(corpus.clips[i]))) for i in keep]
    meta = {"config": cfg, "kind": "w2v"}
    saved = get_kind("w2v").predict(out, meta, waves, local)
    model, _ = load_saved(out)
    m = cfg["model"]
    head = ProbeHead("stats", 32, 3, 0.0, 8, -1, m["head"], m["standardize"]).eval()
    head.load_state_dict(model.state_dict(), strict=False)
    cache = build_layer_cache(corpus, "tiny", MAX_SECONDS)
    scored = np.sort(np.concatenate([s for s, _ in groups]))
    inputs = ProbeInputs(cache, "stats", -1, groups=every)
    with torch.no_grad():
        cached = torch.softmax(head(*inputs.batch(torch.as_tensor(scored))), -1).numpy()
    np.testing.assert_allclose(saved, cached, atol=2e-3)
