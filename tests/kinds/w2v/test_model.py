from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hpo.corpus.manifest import load_corpus
from hpo.kinds.w2v.backbone import new_classifier, resolve_model_name
from hpo.kinds.w2v.bank import FrameBank
from hpo.kinds.w2v.clips import load_waves, max_samples
from hpo.kinds.w2v.config import POOLINGS
from hpo.kinds.w2v.finetune.cache import load_or_build
from hpo.kinds.w2v.finetune.data import Collator
from hpo.kinds.w2v.model import load_saved
from tests.kinds.w2v.settings import MAX_SECONDS


def load_classifier(name: str, pooling: str, dropout: float, mask_time_prob: float):
    cfg = {"pooling": pooling, "dropout": dropout, "mask_time_prob": mask_time_prob}
    return new_classifier(name, cfg, 0, 8)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_pooling_honours_the_padding_mask(pooling: str, device: torch.device) -> None:
    torch.manual_seed(0)
    m = load_classifier("tiny", pooling, 0.1, 0.0).eval().to(device)
    x = torch.randn(3, 32_000, device=device) * 0.1
    lengths = torch.tensor([32_000, 20_000, 9_000], device=device)
    with torch.no_grad():
        batch = m(input_values=x, lengths=lengths).logits
        # Garbage in the padded region must not change anything.
        noisy = x.clone()
        noisy[2, 9_000:] = 5.0
        batch_noisy = m(input_values=noisy, lengths=lengths).logits
        alone = m(input_values=x[2:3, :9_000], lengths=lengths[2:3]).logits
    assert batch.shape == (3, 8)
    torch.testing.assert_close(batch[2], alone[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batch, batch_noisy, atol=1e-5, rtol=1e-4)


def test_feature_encoder_is_frozen_and_head_is_trainable() -> None:
    m = load_classifier("tiny", "attention", 0.1, 0.0)
    assert not any(p.requires_grad for p in m.backbone.feature_extractor.parameters())
    assert all(p.requires_grad for p in m.classifier.parameters())
    assert all(p.requires_grad for p in m.backbone.encoder.parameters())


def test_tiny_model_is_labelled_random_init() -> None:
    path, random_init = resolve_model_name("tiny")
    assert random_init is True
    assert (Path(path) / "config.json").is_file()
    assert "NOT pretrained" in (Path(path) / "README.md").read_text()


def test_building_the_tiny_backbone_prints_no_progress_bar(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from transformers.utils import logging as hf_logging

    from hpo.kinds.w2v.backbone import tiny_backbone_dir

    hf_logging.enable_progress_bar()  # as in a fresh `hpo run`, before anything quiets it
    try:
        assert (tiny_backbone_dir(tmp_path / "tiny") / "config.json").is_file()
    finally:
        hf_logging.disable_progress_bar()
    out, err = capfd.readouterr()
    assert "Writing model shards" not in out + err, err


def test_logits_with_and_without_the_cnn_cache_match(
    w2v_corpus: Path, device: torch.device
) -> None:
    corpus = load_corpus(w2v_corpus)
    subset = list(range(0, len(corpus.clips), 6))  # 16 clips of varied length
    waves, prep = load_waves(corpus, "tiny", max_samples(MAX_SECONDS))
    torch.manual_seed(0)
    m = load_classifier("tiny", "stats", 0.1, 0.0).eval()
    cache = load_or_build(m, waves, corpus, prep, device)
    assert len(cache) == len(corpus.clips)
    m.bank = FrameBank(cache, device)
    items = [{"clip": i, "labels": int(corpus.label_ids[i])} for i in subset]
    raw, cached = Collator(waves)(items), Collator(None)(items)
    assert "input_values" in raw and set(cached) == {"clip_ids", "labels"}
    with torch.no_grad():
        a = m(**{k: v.to(device) for k, v in raw.items()}).logits
        b = m(**cached).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # The cache is reused, not rebuilt: a second open reads the same files (their
    # modification times stay) and gives the same frames.
    files = list(Path(w2v_corpus, "cache", "w2v").rglob("*.npy"))
    assert files
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = load_or_build(m, waves, corpus, prep, device)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    assert np.array_equal(np.asarray(again.frames), np.asarray(cache.frames))
    # And the cache holds what the CNN computes: one clip checked against a fresh run.
    i = subset[3]
    fresh = m.cnn_features(torch.from_numpy(waves[i]).to(device)).cpu().numpy()
    np.testing.assert_allclose(again.get(i), fresh, atol=1e-5)


def test_a_damaged_cnn_cache_is_rebuilt_with_a_note(
    small_corpus: Path, device: torch.device
) -> None:
    corpus = load_corpus(small_corpus)
    waves, prep = load_waves(corpus, "tiny", max_samples(MAX_SECONDS))
    m = load_classifier("tiny", "stats", 0.1, 0.0)
    load_or_build(m, waves, corpus, prep, device)
    (frames,) = list((small_corpus / "cache" / "w2v").rglob("frames.npy"))
    good = np.load(frames)
    frames.write_bytes(frames.read_bytes()[: frames.stat().st_size // 2])  # cut off
    notes: list[str] = []
    cache = load_or_build(m, waves, corpus, prep, device, notes.append)
    assert len(notes) == 1 and "is damaged" in notes[0] and "rebuilding" in notes[0]
    np.testing.assert_allclose(np.asarray(cache.frames), good, atol=1e-5)
    assert np.load(frames).shape == good.shape  # rebuilt in place, complete
    again: list[str] = []
    load_or_build(m, waves, corpus, prep, device, again.append)
    assert again == []  # and then simply read


def test_save_and_load_round_trip_keeps_pooling_and_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = load_classifier("tiny", "layer_weighted", 0.1, 0.0).eval()
    with torch.no_grad():
        m.layer_mix.layer_logits.copy_(torch.tensor([0.5, -0.2, 1.0]))
    m.save(tmp_path)
    back, head = load_saved(tmp_path)
    back.eval()
    # layer_weighted is the mean of the layer mix, saved under that meaning.
    assert (head["pooling"], head["layer"]) == ("mean", "weighted")
    assert back.classifier.out_features == 8
    x = torch.randn(1, 16_000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(
            m(input_values=x, lengths=torch.tensor([16_000])).logits,
            back(input_values=x, lengths=torch.tensor([16_000])).logits,
        )


def test_a_hub_style_pretraining_checkpoint_loads_every_backbone_weight(tmp_path: Path) -> None:
    # facebook/wav2vec2-base is a Wav2Vec2ForPreTraining checkpoint (quantizer and projection
    # heads beside the backbone, group norm in the first conv layer) stored as
    # pytorch_model.bin with the old weight-norm names of the positional convolution. A
    # key that failed to match would be silently re-initialised at random, so compare them.
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        codevector_dim=16,
        proj_codevector_dim=16,
        num_codevectors_per_group=8,
    )
    assert cfg.feat_extract_norm == "group"  # as in wav2vec2-base
    pretrained = Wav2Vec2ForPreTraining(cfg)
    state = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in pretrained.state_dict().items()
    }
    assert any(k.endswith("pos_conv_embed.conv.weight_g") for k in state)
    ckpt = tmp_path / "wav2vec2-base-like"
    ckpt.mkdir()
    cfg.save_pretrained(ckpt)
    torch.save(state, ckpt / "pytorch_model.bin")

    model = load_classifier(str(ckpt), "stats", 0.1, 0.05)
    mine = model.state_dict()
    expected = {
        "backbone." + k.removeprefix("wav2vec2."): v
        for k, v in pretrained.state_dict().items()
        if k.startswith("wav2vec2.")
    }
    assert set(expected) <= set(mine)
    differing = [k for k, v in expected.items() if not torch.equal(mine[k], v)]
    assert not differing
    assert not any(p.requires_grad for p in model.backbone.feature_extractor.parameters())
    assert model.classifier.out_features == 8
    assert not any(k.startswith(("quantizer", "project_q", "project_hid")) for k in mine)
