"""One probe fold in plain PyTorch: AdamW with the same warm-up / hold / linear-decay phases
as fine-tuning (transformers' ``get_wsd_schedule``), clipping or ``off``, the study's mixed
precision, on the training device, watched by the shared ``FoldMonitor``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo.kinds.w2v.config import class_weights
from hpo.kinds.w2v.errors import Diverged
from hpo.kinds.w2v.monitor import FoldMonitor
from hpo.kinds.w2v.probe.head import ProbeHead, ProbeInputs
from hpo.kinds.w2v.schedule import FoldPlan, make_optimizer, make_schedule
from hpo.trial.metrics import fold_scores

EVAL_BATCH = 64


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def train_head(
    head: ProbeHead,
    inputs: ProbeInputs,
    labels: torch.Tensor,
    train_idx: np.ndarray,
    valid_idx: np.ndarray | None,
    t: dict[str, Any],
    monitor: FoldMonitor,
    plan: FoldPlan,
    dtype: torch.dtype | None = None,
) -> dict | None:
    """Fit ``head``'s standardisation on ``train_idx``, then train it as ``plan`` says;
    return its scores on ``valid_idx`` (None without).

    ``labels``: every clip's class, on the training device (as ``head`` and ``inputs``).

    Raises:
        Diverged: a non-finite loss or non-finite validation logits.
        Screened: the epoch stage stopped the fold.
    """
    device = labels.device
    if head.scaler is not None:  # from this fold's training clips only, as the class weights
        head.fit_scaler(inputs.moments, train_idx)
    gen = torch.Generator().manual_seed(int(t["seed"]))
    opt = make_optimizer(head, t["learning_rate"], t["weight_decay"])
    sched = make_schedule(opt, plan.phases)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    clip = math.inf if t["max_grad_norm"] == "off" else float(t["max_grad_norm"])
    train_t = torch.as_tensor(train_idx, dtype=torch.long)
    # From this fold's training clips only; an export older than the key: unweighted.
    n_labels = head.classifier.out_features
    w = class_weights(labels[train_t].cpu().numpy(), n_labels, t.get("class_weight", "none"))
    weight = None if w is None else torch.tensor(w, dtype=torch.float32, device=device)
    n_epochs, step, scores = math.ceil(t["epochs"]), 0, None
    # A head on pooled statistics is a few tiny matrix products a step: on a CPU more than
    # one thread only adds synchronisation (and spins against other workers on the cores).
    threads = torch.get_num_threads()
    if device.type == "cpu" and inputs.x is not None:
        torch.set_num_threads(1)
    try:
        for epoch in range(1, n_epochs + 1):
            head.train()
            perm = train_t[torch.randperm(len(train_t), generator=gen)].to(device)
            for b in range(0, len(perm), t["batch_size"]):
                if step >= plan.total:
                    break
                idx = perm[b : b + t["batch_size"]]
                with _autocast(device, dtype):
                    loss = nn.functional.cross_entropy(
                        head(*inputs.batch(idx)), labels[idx], weight=weight
                    )
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                norm = nn.utils.clip_grad_norm_(head.parameters(), clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                step += 1
                if monitor.due(step):  # reading the loss makes the device wait: only here
                    monitor.step(step, loss.item(), sched.get_last_lr()[0], float(norm))
            if valid_idx is not None and (t["eval_every_epoch"] or epoch == n_epochs):
                scores = evaluate(head, inputs, labels, valid_idx, dtype)
            monitor.epoch(epoch, step, scores)
    finally:
        torch.set_num_threads(threads)
    return scores


@torch.no_grad()
def evaluate(
    head: ProbeHead,
    inputs: ProbeInputs,
    labels: torch.Tensor,
    idx: np.ndarray,
    dtype: torch.dtype | None = None,
) -> dict:
    head.eval()
    device = labels.device
    idx_t = torch.as_tensor(idx, dtype=torch.long, device=device)
    with _autocast(device, dtype):
        logits = torch.cat(
            [
                head(*inputs.batch(idx_t[b : b + EVAL_BATCH]))
                for b in range(0, len(idx_t), EVAL_BATCH)
            ]
        )
    if not torch.isfinite(logits).all():
        raise Diverged("non-finite validation logits")
    y = labels[idx_t].cpu().numpy()
    proba = torch.softmax(logits.float(), -1).cpu().numpy()
    return fold_scores(y, logits.argmax(-1).cpu().numpy(), logits.shape[-1], proba)
