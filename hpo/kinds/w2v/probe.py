"""Frozen-backbone studies (``[model] finetune = false``): each trial trains only pooling +
dropout + classifier on the layer cache, in plain PyTorch.

The head is the fine-tuning classifier's own head (``pooling.py`` modules, the same
parameter names), fed from the cache instead of a live backbone: a parameter-free pooling
of a frozen layer is a per-clip statistic (``mean``: the layer's mean; ``layer_weighted``:
the softmax-weighted sum of every layer's mean, which is the mean of the weighted sum;
``max``; ``stats``), so an epoch is a few matrix products; ``attention`` reads the chosen
layer's frames from the memory map. AdamW with the same warm-up / hold / linear-decay
phases (transformers' ``get_wsd_schedule``), clipping or ``off``, TensorBoard, divergence
guard and the epoch stage, as in fine-tuning.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo.kinds.w2v.layers import LayerCache
from hpo.kinds.w2v.pooling import make_pooling
from hpo.kinds.w2v.schedule import make_optimizer, make_schedule, phases, updates_per_epoch
from hpo.trial.metrics import fold_scores


class ProbeInputs:
    """What the head of a given pooling reads, for every clip, from the layer cache."""

    def __init__(self, cache: LayerCache, pooling: str, layer: int) -> None:
        self.cache, self.pooling, self.layer = cache, pooling, layer % cache.n_layers
        means = torch.from_numpy(cache.means)
        if pooling == "layer_weighted":
            self.x = means  # (N, L+1, H)
        elif pooling == "mean":
            self.x = means[:, self.layer]
        elif pooling in ("max", "stats"):
            mx, sd = cache.clip_stats(self.layer)
            self.x = (
                torch.from_numpy(mx)
                if pooling == "max"
                else torch.cat([means[:, self.layer], torch.from_numpy(sd)], -1)
            )
        else:
            self.x = None  # attention: frames, per batch
        self.bank = None

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.x is not None:
            return self.x[idx], None
        if self.bank is None:  # attention: the layer's frames in RAM once, a batch one gather
            from hpo.kinds.w2v.cache import FeatureCache, FrameBank

            frames = np.asarray(self.cache.layer(self.layer), dtype=np.float32)
            self.bank = FrameBank(FeatureCache(frames, self.cache.offsets), "cpu")
        feats, lengths = self.bank.batch(torch.as_tensor(idx))
        return feats, torch.arange(feats.shape[1])[None] < lengths[:, None]


class ProbeHead(nn.Module):
    """Pooling + dropout + classifier, with the fine-tuning classifier's parameter names."""

    def __init__(self, pooling: str, hidden: int, n_states: int, dropout: float, n_labels: int):
        super().__init__()
        self.pooling = pooling
        self.pooler, width = make_pooling(pooling, hidden, n_states)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, n_labels)
        if pooling == "layer_weighted":
            nn.init.zeros_(self.pooler.layer_logits)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "layer_weighted":  # mean of the weighted sum = weighted sum of means
            w = torch.softmax(self.pooler.layer_logits, 0)
            pooled = (w[None, :, None] * x).sum(1)
        elif self.pooling == "attention":
            pooled = self.pooler(x, mask)
        else:  # mean / max / stats are already the pooled statistics
            pooled = x
        return self.classifier(self.dropout(pooled))


def train_head(
    head: ProbeHead,
    inputs: ProbeInputs,
    labels: np.ndarray,
    train_idx: np.ndarray,
    valid_idx: np.ndarray | None,
    t: dict[str, Any],
    tb_dir: Path | None = None,
    screen=None,
    metric: str = "accuracy",
    on_epoch=None,
) -> tuple[dict | None, float]:
    """Train ``head``; returns (validation scores or None, epochs trained).

    Raises:
        Diverged: a non-finite loss.
        hpo.kinds.w2v.train.Screened: the epoch stage stopped the fold.
    """
    from hpo.kinds.w2v.train import Diverged, Screened

    gen = torch.Generator().manual_seed(int(t["seed"]))
    steps_per_epoch = updates_per_epoch(len(train_idx), t["batch_size"], 1)
    n_epochs = math.ceil(t["epochs"])
    total = math.ceil(steps_per_epoch * t["epochs"])
    opt = make_optimizer(head, t["learning_rate"], t["weight_decay"])
    sched = make_schedule(opt, phases(total, t["warmup_ratio"], t["hold_ratio"]))
    clip = t["max_grad_norm"]
    y = torch.from_numpy(labels)
    writer = None
    if tb_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(tb_dir))
    # A head on pooled statistics is a few tiny matrix products a step: more than one
    # thread only adds synchronisation (and spins against other processes on the cores).
    threads = torch.get_num_threads()
    if inputs.x is not None:
        torch.set_num_threads(1)
    step, scores = 0, None
    log_every = t.get("logging_steps") or max(1, total // 50)  # as the Trainer logs
    try:
        for epoch in range(1, n_epochs + 1):
            head.train()
            perm = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
            for b in range(0, len(perm), t["batch_size"]):
                if step >= total:
                    break
                idx = perm[b : b + t["batch_size"]]
                loss = nn.functional.cross_entropy(head(*inputs.batch(idx)), y[idx])
                if not torch.isfinite(loss):
                    raise Diverged(f"non-finite loss ({loss.item()}) at step {step}")
                opt.zero_grad()
                loss.backward()
                norm = nn.utils.clip_grad_norm_(
                    head.parameters(), math.inf if clip == "off" else float(clip)
                )
                opt.step()
                sched.step()
                step += 1
                if writer is not None and step % log_every == 0:
                    writer.add_scalar("train/loss", loss.item(), step)
                    writer.add_scalar("train/learning_rate", sched.get_last_lr()[0], step)
                    writer.add_scalar("train/grad_norm", float(norm), step)
            if valid_idx is not None and (t["eval_every_epoch"] or epoch == n_epochs):
                scores = evaluate(head, inputs, labels, valid_idx)
                if writer is not None:
                    for k in ("accuracy", "uar", "macro_f1"):
                        writer.add_scalar(f"eval/{k}", scores[k], step)
                if on_epoch:
                    on_epoch(
                        epoch, n_epochs, f"loss {loss.item():.3f}, val acc {scores['accuracy']:.3f}"
                    )
                reason = screen.after_epoch(epoch, scores[metric]) if screen else None
                if reason and epoch < n_epochs:
                    raise Screened(reason, float(epoch))
    finally:
        torch.set_num_threads(threads)
        if writer is not None:
            writer.close()
    return scores, float(t["epochs"])


@torch.no_grad()
def evaluate(head: ProbeHead, inputs: ProbeInputs, labels: np.ndarray, idx: np.ndarray) -> dict:
    head.eval()
    from hpo.kinds.w2v.train import Diverged

    logits = torch.cat([head(*inputs.batch(idx[b : b + 64])) for b in range(0, len(idx), 64)])
    if not torch.isfinite(logits).all():
        raise Diverged("non-finite validation logits")
    return fold_scores(labels[idx], logits.argmax(-1).numpy(), logits.shape[-1])


def build_layer_cache(corpus, model_name: str, max_seconds: float, reporter=None) -> LayerCache:
    """The layer cache of backbone ``model_name`` for clips cut at ``max_seconds`` (built
    once; its size and build time printed)."""
    from hpo.corpus.audio import TARGET_SR
    from hpo.kinds.w2v import layers
    from hpo.kinds.w2v.objective import (
        device,
        load_waves,
        new_classifier,
        preprocessing_key,
        quiet_transformers,
    )

    quiet_transformers()
    max_samples = int(max_seconds * TARGET_SR)
    # The key hashes the backbone's weights only: the head built with it does not matter.
    model = new_classifier(
        model_name,
        {"pooling": "mean", "dropout": 0.0, "mask_time_prob": 0.0},
        0,
        len(corpus.labels),
    )
    # The clips are read only when the cache has to be built.
    cache = layers.load_or_build(
        model,
        lambda: load_waves(corpus, model_name, max_samples)[0],
        corpus,
        preprocessing_key(model_name, max_samples),
        device(),
    )
    if reporter:
        size, n, dt = cache.size_bytes / 2**30, len(corpus.clips), cache.build_seconds
        how = f"built in {dt:.1f} s ({n / dt:.1f} clips/s)" if dt else "reused"
        reporter.log(
            f"layer cache: {n} clips x {cache.n_layers} layers, {size:.2f} GiB "
            f"on disk at {cache.root}, {how}"
        )
    return cache
