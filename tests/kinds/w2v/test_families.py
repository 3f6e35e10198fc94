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

from hpo.corpus.manifest import load_corpus
from hpo.errors import HpoError
from hpo.kinds.w2v.backbone import backbone_info, load_backbone
from hpo.kinds.w2v.cache import FrameBank, load_or_build
from hpo.kinds.w2v.config import POOLINGS, TrainingSettings
from hpo.kinds.w2v.data import ClipDataset
from hpo.kinds.w2v.model import load_saved
from hpo.kinds.w2v.objective import load_waves, new_classifier
from hpo.kinds.w2v.train import train_fold
from tests.kinds.w2v.published import PUBLISHED, save_published_like

MAX_SAMPLES = 24_000  # 1.5 s: enough frames for SpecAugment's masks, fast on a CPU


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("published")
    return {n: save_published_like(n, root / n.replace("/", "--")) for n in PUBLISHED}


@pytest.fixture(scope="session")
def clips(prepared: Path) -> tuple:
    corpus = load_corpus(prepared)
    subset = list(range(0, len(corpus.clips), 48))[:8]  # 8 clips, several actors
    labels = np.array([c.emotion_id - 1 for c in corpus.clips])
    return corpus, subset, labels


def _training() -> dict:
    t = TrainingSettings(epochs=1.0, batch_size=4, learning_rate=1e-3, logging_steps=1)
    return {**dataclasses.asdict(t), "eval_every_epoch": False, "max_grad_norm": 1.0}


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("name", list(PUBLISHED))
def test_trains_in_training_mode(
    name: str, pooling: str, cache: bool, checkpoints: dict, clips: tuple
) -> None:
    corpus, subset, labels = clips
    path = str(checkpoints[name])
    waves, prep = load_waves(corpus, path, MAX_SAMPLES)
    cfg = load_backbone(path).config
    model = new_classifier(path, {"pooling": pooling, "dropout": 0.1, "mask_time_prob": 0.05}, 0, 8)
    # The published regularisers are on: this is what crashed layer_weighted before.
    assert model.backbone.config.layerdrop == cfg.layerdrop > 0
    assert model.backbone.config.mask_time_prob > 0 and model.backbone.config.hidden_dropout > 0
    feats = load_or_build(model, waves, corpus, prep, torch.device("cpu")) if cache else None
    model.bank = FrameBank(feats, torch.device("cpu")) if cache else None
    ds = ClipDataset(subset, labels, waves, MAX_SAMPLES, feats)
    losses: list[float] = []
    real_forward = model.forward

    def spy(*a, **k):
        assert model.training  # the Trainer runs it in training mode
        out = real_forward(*a, **k)
        losses.append(float(out.loss.detach()))
        return out

    model.forward = spy
    train_fold(model, _training(), ds, None, None)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)


def test_layer_weighted_sees_every_layer_even_when_layerdrop_skips_some(
    checkpoints: dict,
) -> None:
    path = str(checkpoints["facebook/wav2vec2-base"])
    model = new_classifier(
        path, {"pooling": "layer_weighted", "dropout": 0.0, "mask_time_prob": 0.0}, 0, 8
    )
    model.backbone.config.layerdrop = 0.5  # skip about half the layers
    model.train()
    x, lengths = torch.randn(2, 16_000) * 0.1, torch.tensor([16_000, 12_000])
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
