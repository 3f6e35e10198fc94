"""A fine-tuned classifier on disk: trained on every actor by ``hpo train``, used by
``hpo predict``. The backbone is saved in its family's own format (``save_pretrained``),
with its preprocessing config, and the head beside it (``model.EmotionClassifier.save``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def train_and_save(cfg: dict[str, Any], corpus, out: Path, reporter) -> dict[str, Any]:
    from hpo.corpus.audio import TARGET_SR
    from hpo.kinds.w2v.backbone import backbone_info, load_feature_extractor
    from hpo.kinds.w2v.cache import FrameBank, load_or_build
    from hpo.kinds.w2v.data import ClipDataset
    from hpo.kinds.w2v.objective import device, load_waves, new_classifier, quiet_transformers
    from hpo.kinds.w2v.train import train_fold

    quiet_transformers()
    m, t = cfg["model"], cfg["training"]
    info = backbone_info(m["name"])
    if not m.get("finetune", True):
        return _train_probe(cfg, corpus, out, info)
    max_samples = int(t["max_seconds"] * TARGET_SR)
    waves, preprocessing = load_waves(corpus, m["name"], max_samples)
    labels = corpus.label_ids
    model = new_classifier(m["name"], m, t["seed"], len(corpus.labels))
    cache = None
    if t["feature_cache"]:
        cache = load_or_build(model.to(device()), waves, corpus, preprocessing, device())
        model.bank = FrameBank(cache, device())
    train_ds = ClipDataset(range(len(waves)), labels, waves, max_samples, cache)
    train_fold(
        model,
        {**t, "eval_every_epoch": False},
        train_ds,
        None,
        Path(t["tensorboard_dir"]) / "train" / out.name,
        reporter=reporter,
    )
    model.cpu().save(out, {"max_seconds": t["max_seconds"], "labels": list(corpus.labels)})
    load_feature_extractor(m["name"]).save_pretrained(out)
    return info


def _train_probe(cfg: dict[str, Any], corpus, out: Path, info: dict) -> dict[str, Any]:
    """A frozen backbone: train the head on the layer cache of every clip, then save it
    with the backbone as the same classifier fine-tuning makes (``hpo predict`` is one)."""
    import torch

    from hpo.kinds.w2v.backbone import load_feature_extractor
    from hpo.kinds.w2v.objective import new_classifier
    from hpo.kinds.w2v.probe import ProbeHead, ProbeInputs, build_layer_cache, train_head

    m, t = cfg["model"], cfg["training"]
    cache = build_layer_cache(corpus, m["name"], t["max_seconds"])
    torch.manual_seed(t["seed"])
    n_labels = len(corpus.labels)
    head = ProbeHead(m["pooling"], cache.states.shape[-1], cache.n_layers, m["dropout"], n_labels)
    labels = corpus.label_ids
    everyone = np.arange(len(labels))
    train_head(head, ProbeInputs(cache, m["pooling"], m["probe_layer"]), labels, everyone, None, t)
    model = new_classifier(m["name"], m, t["seed"], n_labels)
    missing, unexpected = model.load_state_dict(head.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("backbone.") for k in missing)
    model.save(out, {"max_seconds": t["max_seconds"], "labels": list(corpus.labels), "probe": True})
    load_feature_extractor(m["name"]).save_pretrained(out)
    return info


def predict_proba(model_dir: Path, meta: dict[str, Any], waves: list[np.ndarray]) -> np.ndarray:
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from hpo.kinds.w2v.backbone import preprocess
    from hpo.kinds.w2v.model import load_saved
    from hpo.kinds.w2v.objective import quiet_transformers

    quiet_transformers()
    model, head = load_saved(model_dir)
    model.eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    max_samples = int(head.get("max_seconds", 6.0) * 16_000)
    out = []
    with torch.no_grad():
        for w in waves:
            x = torch.from_numpy(preprocess(fe, w, max_samples))[None]
            logits = model(input_values=x, lengths=torch.tensor([x.shape[1]])).logits
            out.append(torch.softmax(logits.float(), -1)[0].numpy())
    return np.stack(out)
