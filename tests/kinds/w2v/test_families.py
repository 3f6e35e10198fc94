"""Every published wav2vec2-family structure trains with every pooling, cache on and off,
in training mode (dropout, layerdrop and SpecAugment active), through the study's own
training code. A crash here is a bug in hpo."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hpo.corpus.audio import load_clip
from hpo.corpus.manifest import load_corpus
from hpo.errors import HpoError
from hpo.kinds.w2v.backbone import (
    BackboneStore,
    backbone_info,
    load_backbone,
    load_feature_extractor,
    new_classifier,
    preprocess,
)
from hpo.kinds.w2v.bank import FeatureCache, FrameBank
from hpo.kinds.w2v.config import POOLINGS, TrainingSettings
from hpo.kinds.w2v.finetune.data import fold_examples
from hpo.kinds.w2v.finetune.train import train_fold
from hpo.kinds.w2v.model import load_saved
from hpo.kinds.w2v.monitor import FoldMonitor
from hpo.kinds.w2v.schedule import plan_fold
from tests.kinds.w2v.published import PUBLISHED, save_published_like

MAX_SAMPLES = 24_000  # 1.5 s: enough frames for SpecAugment's masks, fast on a CPU
N_CLIPS = 8


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("published")
    return {n: save_published_like(n, root / n.replace("/", "--")) for n in PUBLISHED}


@pytest.fixture(scope="session")
def clips(prepared: Path) -> tuple[list[str], np.ndarray]:
    """Eight clips of several speakers (paths) and their labels: all a step needs."""
    corpus = load_corpus(prepared)
    subset = list(range(0, len(corpus.clips), 48))[:N_CLIPS]
    paths = [str(corpus.clip_path(corpus.clips[i])) for i in subset]
    return paths, corpus.label_ids[subset]


def _waves(path: str, clips: tuple) -> list[np.ndarray]:
    fe = load_feature_extractor(path)
    return [preprocess(fe, load_clip(p), MAX_SAMPLES) for p in clips[0]]


def _bank(model, waves: list[np.ndarray], device) -> FrameBank:
    """The CNN cache of these clips, as a study builds it (clip i is row i)."""
    x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(w) for w in waves], True)
    feats, n = model.to(device).cnn_batch(x.to(device), torch.tensor([len(w) for w in waves]))
    rows = [feats[i, : int(k)].float().cpu().numpy() for i, k in enumerate(n)]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    return FrameBank(FeatureCache(np.concatenate(rows), offsets), device)


def _training() -> dict:
    t = TrainingSettings(epochs=1.0, batch_size=4, learning_rate=1e-3, logging_steps=1)
    return {**dataclasses.asdict(t), "eval_every_epoch": False, "max_grad_norm": 1.0}


def _regularised(model, name: str) -> None:
    """The published regularisers are on: this is what crashed layer_weighted before."""
    cfg = model.backbone.config
    assert cfg.layerdrop == PUBLISHED[name]["config"]["layerdrop"] > 0
    assert cfg.mask_time_prob > 0 and cfg.hidden_dropout > 0


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_each_structure_fine_tunes_through_the_trainer_in_training_mode(
    name: str, checkpoints: dict, clips: tuple, device: torch.device
) -> None:
    # One Trainer fit per structure, the poolings and the cache rotating across them (every
    # pooling with every structure, cache on and off, runs below without the Trainer).
    i = list(PUBLISHED).index(name)
    pooling, cache = POOLINGS[i % len(POOLINGS)], i % 2 == 0
    path = str(checkpoints[name])
    waves = _waves(path, clips)
    model = new_classifier(path, {"pooling": pooling, "dropout": 0.1, "mask_time_prob": 0.05}, 0, 8)
    _regularised(model, name)
    model.bank = _bank(model, waves, device) if cache else None
    lengths = np.array([len(w) for w in waves])
    losses: list[float] = []
    real_forward = model.forward

    def spy(*a, **k):
        assert model.training  # the Trainer runs it in training mode
        out = real_forward(*a, **k)
        losses.append(float(out.loss.detach()))
        return out

    model.forward = spy
    t = _training()
    plan = plan_fold(N_CLIPS, t)
    with FoldMonitor(0, 1.0, None, plan.log_every) as monitor:
        train_fold(
            model,
            t,
            fold_examples(range(N_CLIPS), clips[1], lengths),
            None,
            monitor,
            plan,
            waves=waves,
        )
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert next(model.parameters()).device.type == device.type


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_every_pooling_trains_on_each_structure_with_and_without_the_cache(
    name: str, checkpoints: dict, clips: tuple, device: torch.device
) -> None:
    path = str(checkpoints[name])
    # Two clips of different lengths (padding and masks matter), a second or less each.
    waves = [w[:n] for w, n in zip(_waves(path, clips)[:2], (16_000, 11_000), strict=True)]
    store = BackboneStore(path, 0.05, device)
    x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(w) for w in waves], True).to(device)
    lengths = torch.tensor([len(w) for w in waves], device=device)
    labels = torch.as_tensor(clips[1][:2], device=device)
    bank = None
    for pooling in POOLINGS:
        model = store.classifier({"pooling": pooling, "dropout": 0.1}, 0, 8).train()
        _regularised(model, name)
        model.bank = bank = bank or _bank(model, waves, device)  # the frozen CNN: one cache
        for batch in ({"input_values": x, "lengths": lengths}, {"clip_ids": torch.arange(2)}):
            model.zero_grad()
            out = model(**batch, labels=labels)
            out.loss.backward()
            assert torch.isfinite(out.loss), (pooling, list(batch))
            grads = [p.grad for p in model.classifier.parameters()]
            assert all(g is not None and torch.isfinite(g).all() for g in grads)
            assert any(p.grad is not None for p in model.backbone.encoder.parameters())


def test_layer_weighted_sees_every_layer_even_when_layerdrop_skips_some(
    checkpoints: dict, device: torch.device
) -> None:
    path = str(checkpoints["facebook/wav2vec2-base"])
    model = new_classifier(
        path, {"pooling": "layer_weighted", "dropout": 0.0, "mask_time_prob": 0.0}, 0, 8
    )
    model.backbone.config.layerdrop = 0.5  # skip about half the layers
    model.to(device).train()
    x = torch.randn(2, 16_000, device=device) * 0.1
    lengths = torch.tensor([16_000, 12_000], device=device)
    seen = []
    real = model.layer_states

    def spy(hidden_states, last=None):
        states = real(hidden_states, last)
        seen.append((len(hidden_states), len(model._ran), states.shape[0]))
        return states

    model.layer_states = spy
    for _ in range(5):
        model(input_values=x, lengths=lengths)
    n_layers = model.backbone.config.num_hidden_layers
    assert any(ran < n_layers for _, ran, _ in seen)  # layers really were skipped
    for recorded, ran, stacked in seen:
        assert recorded == ran + 1  # transformers records only the layers that ran...
        assert stacked == n_layers + 1  # ...and the pooling still gets all L+1 states


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_family_is_recorded_and_a_saved_model_round_trips(
    name: str, checkpoints: dict, tmp_path: Path
) -> None:
    path = str(checkpoints[name])
    assert backbone_info(path)["backbone"] == PUBLISHED[name]["family"]
    model = new_classifier(path, {"pooling": "stats", "dropout": 0.1, "mask_time_prob": 0.05}, 0, 8)
    model.eval()
    model.save(tmp_path)
    back, head = load_saved(tmp_path)
    back.eval()
    assert type(back.backbone) is type(model.backbone) and head["pooling"] == "stats"
    x = torch.randn(1, 16_000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_values=x, lengths=torch.tensor([16_000])).logits,
            back(input_values=x, lengths=torch.tensor([16_000])).logits,
        )


def test_weights_that_do_not_load_are_an_error_not_a_random_init(
    checkpoints: dict, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    src = checkpoints["microsoft/wavlm-base-plus"]
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in src.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    state = load_file(str(broken / "model.safetensors"))
    dropped = [k for k in state if "encoder.layers.3." in k]
    for k in dropped:
        del state[k]
    save_file(state, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(HpoError, match=r"weights do not all load into WavLMModel \(missing"):
        load_backbone(str(broken))
