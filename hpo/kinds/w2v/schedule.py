"""AdamW with the wav2vec 2.0 fine-tuning schedule: warm up, hold, decay linearly."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Phases:
    warmup: int
    hold: int
    decay: int


@dataclass(frozen=True)
class FoldPlan:
    """A fold's optimizer steps, counted once for both training paths."""

    total: int
    phases: Phases
    log_every: int  # TensorBoard scalars every this many steps (about 50 points a fold)


def plan_fold(n_examples: int, t: dict[str, Any]) -> FoldPlan:
    """The plan for ``n_examples`` training clips under ``[training]`` settings ``t`` (the
    probe has no ``gradient_accumulation``: one batch, one update)."""
    acc = t.get("gradient_accumulation", 1)
    total = math.ceil(updates_per_epoch(n_examples, t["batch_size"], acc) * t["epochs"])
    return FoldPlan(
        total,
        phases(total, t["warmup_ratio"], t["hold_ratio"]),
        t.get("logging_steps") or max(1, total // 50),
    )


def updates_per_epoch(n_examples: int, batch_size: int, accumulation: int) -> int:
    """Optimizer steps per epoch, counted as the Trainer counts them."""
    batches = math.ceil(n_examples / batch_size)
    return max(batches // accumulation + int(batches % accumulation > 0), 1)


def phases(total_updates: int, warmup_ratio: float, hold_ratio: float) -> Phases:
    """Split a fold's own number of updates into warm-up, hold and decay."""
    warmup = round(warmup_ratio * total_updates)
    hold = round(hold_ratio * total_updates)
    return Phases(warmup, hold, max(total_updates - warmup - hold, 0))


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with PyTorch's defaults but for lr and weight decay.

    Weight decay applies to weight matrices only; biases, norm scales and the pooling's
    layer weights (all 1-D) are not decayed, as in BERT/wav2vec 2.0 fine-tuning.
    """
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else plain).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}],
        lr=lr,
    )


def make_schedule(optimizer: torch.optim.Optimizer, ph: Phases):
    """transformers' warmup-stable-decay schedule with *linear* decay (its default is cosine)."""
    from transformers import get_wsd_schedule

    return get_wsd_schedule(
        optimizer,
        num_warmup_steps=ph.warmup,
        num_stable_steps=ph.hold,
        num_decay_steps=ph.decay,
        warmup_type="linear",
        decay_type="linear",
        min_lr_ratio=0.0,
    )
