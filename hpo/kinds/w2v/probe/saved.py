"""``hpo train`` for a probe: the head trained on the layer cache of every clip, then saved
with its frozen backbone as the same classifier fine-tuning makes (``hpo predict`` is one),
reading the layer the probe was trained on (``probe_layer``) and standardising with the
statistics of the clips it was trained on (buffers of its head).

A probe trained with per-speaker normalisation (``[model] speaker_norm``) is trained on the
corpus's frames normalised by the study's rule; ``predict_normalised`` runs the backbone on
the clips to classify and their enrolment clips and normalises them by the statistics the
caller names, exactly as the layer cache's frames were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hpo.kinds.speaker_norm import Groups, SpeakerNorm, corpus_groups, scored_clips


def train_and_save(cfg: dict[str, Any], corpus, out: Path, reporter) -> None:
    import torch

    from hpo.kinds.w2v.backbone import new_classifier
    from hpo.kinds.w2v.config import layer_and_pooling
    from hpo.kinds.w2v.device import autocast_dtype, training_device
    from hpo.kinds.w2v.monitor import final_fit
    from hpo.kinds.w2v.probe.head import ProbeHead, ProbeInputs
    from hpo.kinds.w2v.probe.objective import build_layer_cache
    from hpo.kinds.w2v.probe.train import train_head
    from hpo.kinds.w2v.saved import save_classifier

    m, t = cfg["model"], cfg["training"]
    device = training_device()
    log = reporter.log if reporter else None
    cache = build_layer_cache(corpus, m["name"], t["max_seconds"], reporter, device)
    n_labels = len(corpus.labels)
    torch.manual_seed(t["seed"])
    layer, pooling = layer_and_pooling(m)
    norm = SpeakerNorm.of(m)
    groups = corpus_groups(norm, corpus) if norm.on else None
    # An export older than head and standardize: a linear head on raw features, as it ran.
    head = ProbeHead(
        pooling,
        cache.states.shape[-1],
        cache.n_layers,
        m["dropout"],
        n_labels,
        layer,
        m.get("head", "linear"),
        m.get("standardize", False),
    )
    head.to(device)
    everyone = np.arange(len(corpus.clips))
    plan, monitor = final_fit(len(everyone), t, out, reporter)
    with monitor:
        train_head(
            head,
            ProbeInputs(cache, pooling, layer, device, log, groups, norm.scales),
            torch.from_numpy(corpus.label_ids).to(device),
            everyone,
            None,
            t,
            monitor,
            plan,
            autocast_dtype(t["mixed_precision"], device),
        )
    model = new_classifier(m["name"], m, t["seed"], n_labels)  # reads m["probe_layer"]
    missing, unexpected = model.load_state_dict(head.cpu().state_dict(), strict=False)
    if unexpected or not all(k.startswith("backbone.") for k in missing):
        raise RuntimeError(f"probe head does not fit the classifier ({unexpected or missing})")
    save_classifier(model, m["name"], corpus, t, out, probe=True)


def predict_normalised(
    model_dir: Path, waves: list[np.ndarray], groups: Groups, norm: SpeakerNorm
) -> np.ndarray:
    """Class probabilities of the scored clips of ``groups`` (index order): the saved probe
    head on the backbone's frames of ``waves``, normalised per speaker (``norm``) by
    ``groups``' statistics clips, as a layer cache of these clips would give them."""
    import torch

    from hpo.kinds.w2v.probe.head import ProbeHead, ProbeInputs
    from hpo.kinds.w2v.probe.layers import LayerCache
    from hpo.kinds.w2v.saved import load_for_prediction

    model, head, cut = load_for_prediction(model_dir, waves)
    clips = []
    with torch.no_grad():  # every layer's frames of each clip: the layer cache's content
        for c in cut:
            x = torch.from_numpy(c)[None]
            feats, n = model.cnn_batch(x, torch.tensor([x.shape[1]]))
            states, _ = model.encode(feats, n, all_layers=True)  # (L+1, 1, T, H)
            clips.append(states[:, 0, : int(n[0])].float().numpy())
    offsets = np.concatenate([[0], np.cumsum([c.shape[1] for c in clips])]).astype(np.int64)
    means = np.stack([c.mean(1) for c in clips]).astype(np.float32)
    squares = np.stack([(c**2).mean(1) for c in clips]).astype(np.float32)
    # Half precision, as the layer cache the head was trained on holds the frames.
    states = np.concatenate(clips, axis=1).astype(np.float16)
    cache = LayerCache(model_dir, states, offsets, means, squares)
    probe = ProbeHead(
        head["pooling"],
        states.shape[-1],
        states.shape[0],
        0.0,
        head["n_labels"],
        head.get("layer", -1),
        head.get("head", "linear"),
        bool(head.get("standardize", False)),
    ).eval()
    probe.load_state_dict(model.state_dict(), strict=False)  # the saved head's weights
    layer, pooling = probe.layer, probe.pooling
    inputs = ProbeInputs(cache, pooling, layer, "cpu", None, groups, norm.scales)
    with torch.no_grad():
        logits = probe(*inputs.batch(torch.as_tensor(scored_clips(groups))))
    return torch.softmax(logits.float(), -1).numpy()
