"""Frozen-backbone studies: the layer cache changes speed, not results."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import tomli_w
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.kinds.w2v.backbone import new_classifier, tiny_backbone_dir
from hpo.kinds.w2v.clips import load_waves, max_samples
from hpo.kinds.w2v.config import POOLINGS
from hpo.kinds.w2v.model import load_saved
from hpo.kinds.w2v.probe.head import ProbeHead, ProbeInputs
from hpo.kinds.w2v.probe.objective import build_layer_cache
from hpo.trial.predictions import of_trial
from tests.helpers import write_spec
from tests.kinds.w2v.settings import MAX_SECONDS, TINY_LAYERS


def _spec(tmp_path: Path, prepared: Path, model: dict | None = None, **sections) -> Path:
    sections["space"] = {**TINY_LAYERS, **sections.get("space", {})}
    return write_spec(
        tmp_path / "probe.toml",
        base="w2v-probe",
        data={"corpus": str(prepared)},
        model={"name": "tiny", **(model or {})},
        training={
            "epochs": 4.0,
            "max_seconds": MAX_SECONDS,
            "tensorboard_dir": str(tmp_path / "runs"),
        },
        **sections,
    )


@pytest.mark.parametrize("pooling", POOLINGS)
def test_probe_logits_equal_the_fine_tuning_classifiers(
    tmp_path: Path, w2v_corpus: Path, pooling: str
) -> None:
    spec = load_spec(_spec(tmp_path, w2v_corpus))
    corpus = load_corpus(w2v_corpus)
    cache = build_layer_cache(corpus, "tiny", spec.settings.training.max_seconds)
    assert cache.states.dtype == np.float16 and isinstance(cache.states, np.memmap)
    torch.manual_seed(1)
    head = ProbeHead(pooling, cache.states.shape[-1], cache.n_layers, 0.1, 8).eval()
    for p in head.parameters():  # not the zero init: a real mix of layers and scores
        torch.nn.init.normal_(p, std=0.5)
    clf = new_classifier("tiny", {"pooling": pooling, "dropout": 0.1, "mask_time_prob": 0.0}, 0, 8)
    clf.load_state_dict(head.state_dict(), strict=False)  # the same head weights
    clf.eval()
    idx = np.arange(0, len(corpus.clips), 9)[:10]
    waves, _ = load_waves(corpus, "tiny", max_samples(MAX_SECONDS))
    with torch.no_grad():
        probe = head(*ProbeInputs(cache, pooling, -1).batch(torch.as_tensor(idx)))
        live = torch.cat(
            [
                clf(
                    input_values=torch.from_numpy(waves[i])[None],
                    lengths=torch.tensor([len(waves[i])]),
                ).logits
                for i in idx
            ]
        )
    # The cache stores frames in half precision: equal up to that rounding.
    torch.testing.assert_close(probe, live, atol=2e-3, rtol=2e-3)
    assert torch.equal(probe.argmax(-1), live.argmax(-1))


def test_probe_study_trains_the_head_only_and_round_trips(
    tmp_path: Path, w2v_corpus: Path, synth_src: Path
) -> None:
    spec = _spec(tmp_path, w2v_corpus)
    db = tmp_path / "s.db"
    run = CliRunner()
    res = run.invoke(cli, ["run", "--study", str(spec), "--n-trials", "3", "--storage", str(db)])
    assert res.exit_code == 0, res.output
    assert "layer cache:" in res.output and "GiB on disk" in res.output
    study = optuna.load_study(study_name="w2v-probe", storage=f"sqlite:///{db}")
    assert study.user_attrs["backbone"] == "wav2vec2"
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert done and all(None not in t.user_attrs["fold_accuracy"] for t in done)
    y = load_corpus(w2v_corpus).label_ids
    for t in done:
        assert Path(t.user_attrs["tensorboard"], "fold-0").is_dir()
        # Per-clip predictions and probabilities kept: every clip once, as its folds scored.
        kept = of_trial(t)
        assert sorted(kept.clips.tolist()) == list(range(len(y)))
        assert np.allclose(kept.proba.sum(1), 1, atol=1e-2)
        assert (kept.proba.argmax(1) == kept.pred).mean() > 0.95  # float16 ties aside
        for f, acc in enumerate(t.user_attrs["fold_accuracy"]):
            mine = kept.folds == f
            assert (kept.pred[mine] == y[kept.clips[mine]]).mean() == pytest.approx(acc, abs=1e-6)
        if t.params["probe_layer"] == "weighted":
            w = t.user_attrs["layer_weights"]["0"]
            assert len(w) == 3 and sum(w) == pytest.approx(1, abs=1e-3)
    cfg = tmp_path / "best.toml"
    assert (
        run.invoke(
            cli, ["export", "--study", "w2v-probe", "--storage", str(db), "--out", str(cfg)]
        ).exit_code
        == 0
    )
    out = tmp_path / "model"
    res = run.invoke(cli, ["train", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "head.json").read_text())["probe"] is True
    # The head only: the trained model's backbone is the tiny one it started from, every
    # tensor byte for byte.
    start = load_file(str(tiny_backbone_dir() / "model.safetensors"))
    trained = load_file(str(out / "model.safetensors"))
    # (All but the masking embedding, unused with mask_time_prob 0 and not saved.)
    assert set(start) - set(trained) <= {"masked_spec_embed"} and set(trained) <= set(start)
    assert all(torch.equal(trained[k], start[k]) for k in trained)
    speaker = [str(p) for p in sorted((synth_src / "Actor_02").glob("*.wav"))]
    clips, others = speaker[::2], speaker[1::2]
    # speaker_norm is searched: a normalised best trial takes the speaker's other clips.
    norm = tomllib.loads(cfg.read_text())["config"]["model"]["speaker_norm"]
    enrol = [] if norm == "off" else ["--enrol", others[0], "--enrol", others[1]]
    res = run.invoke(cli, ["predict", "--model", str(out), *clips, *enrol, "--json"])
    assert res.exit_code == 0, res.output
    probs = np.array(list(json.loads(res.stdout)["predictions"].values()))
    assert probs.shape == (len(clips), 8) and np.allclose(probs.sum(1), 1, atol=1e-4)
    # The head was trained: its probabilities follow the clip (a head that ignored its input,
    # or one left at its zero init, gives one row for all).
    assert len({tuple(p.round(6)) for p in probs}) == len(clips), probs


def test_report_shows_the_learned_layer_weights_of_the_best_trial(
    tmp_path: Path, w2v_corpus: Path
) -> None:
    spec = _spec(
        tmp_path,
        w2v_corpus,
        space={"probe_layer": {"type": "categorical", "choices": ["weighted"]}},
    )
    db = tmp_path / "s.db"
    run = CliRunner()
    assert (
        run.invoke(
            cli, ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
        ).exit_code
        == 0
    )
    out = tmp_path / "rep"
    res = run.invoke(
        cli, ["report", "--study", "w2v-probe", "--storage", str(db), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert (out / "layer_weights.png").read_bytes()[:4] == b"\x89PNG"
    assert 'alt="layer_weights"' in (out / "index.html").read_text()


def test_a_probe_on_another_layer_predicts_from_that_layer_after_hpo_train(
    tmp_path: Path, w2v_corpus: Path, device: torch.device
) -> None:
    # The saved classifier used to pool the backbone's last state whatever probe_layer said.
    spec = load_spec(_spec(tmp_path, w2v_corpus, model={"probe_layer": 1, "pooling": "mean"}))
    cfg = {"kind": "w2v", "name": "p", "data": {"corpus": str(w2v_corpus)}}
    cfg |= spec.settings.merged({"learning_rate": 3e-3, "warmup_ratio": 0.1, "max_grad_norm": 1.0})
    export = tmp_path / "p-best.toml"
    export.write_text(tomli_w.dumps({"study": "p", "config": cfg}))
    out = tmp_path / "model"
    res = CliRunner().invoke(cli, ["train", "--config", str(export), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "head.json").read_text())["layer"] == 1
    model, saved = load_saved(out)
    model.eval()
    head = ProbeHead("mean", 32, 3, 0.0, 8, 1, saved["head"], saved["standardize"]).eval()
    head.load_state_dict(model.state_dict(), strict=False)  # the head the probe trained
    corpus = load_corpus(w2v_corpus)
    cache = build_layer_cache(corpus, "tiny", MAX_SECONDS)
    idx = np.arange(0, len(corpus.clips), 11)[:8]
    waves, _ = load_waves(corpus, str(out), max_samples(MAX_SECONDS))
    with torch.no_grad():
        on_layer_1 = head(*ProbeInputs(cache, "mean", 1).batch(torch.as_tensor(idx)))
        head.layer = 2  # the same head on the output's features
        on_output = head(*ProbeInputs(cache, "mean", -1).batch(torch.as_tensor(idx)))
        saved = torch.cat(
            [
                model(
                    input_values=torch.from_numpy(waves[i])[None],
                    lengths=torch.tensor([len(waves[i])]),
                ).logits
                for i in idx
            ]
        )
    torch.testing.assert_close(saved, on_layer_1, atol=2e-3, rtol=2e-3)
    assert not torch.allclose(saved, on_output, atol=2e-3)  # the layers really differ


def test_a_damaged_layer_cache_is_rebuilt_with_a_note(small_corpus: Path) -> None:
    build_layer_cache(load_corpus(small_corpus), "tiny", MAX_SECONDS)
    (states,) = list((small_corpus / "cache" / "layers").rglob("states.npy"))
    good = np.load(states)
    states.write_bytes(states.read_bytes()[:4096])  # an interrupted copy, say
    notes: list[str] = []
    reporter = SimpleNamespace(log=notes.append)
    cache = build_layer_cache(load_corpus(small_corpus), "tiny", MAX_SECONDS, reporter)
    assert any("is damaged" in n and "rebuilding" in n for n in notes), notes
    np.testing.assert_array_equal(np.asarray(cache.states), good)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_what_the_probe_reads_lives_on_the_training_device(
    w2v_corpus: Path, pooling: str, device: torch.device
) -> None:
    cache = build_layer_cache(load_corpus(w2v_corpus), "tiny", MAX_SECONDS)
    inputs = ProbeInputs(cache, pooling, -1, device)
    x, mask = inputs.batch(torch.arange(4, device=device))
    assert x.device.type == device.type and x.dtype == torch.float32
    assert mask is None or mask.device.type == device.type
