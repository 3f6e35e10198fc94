"""``hpo train`` for a probe: the head trained on the layer cache of every clip, then saved
with its frozen backbone as the same classifier fine-tuning makes (``hpo predict`` is one),
reading the layer the probe was trained on (``probe_layer``) and standardising with the
statistics of the clips it was trained on (buffers of its head)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


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
            ProbeInputs(cache, pooling, layer, device, log),
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
