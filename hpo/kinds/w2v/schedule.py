"""AdamW with the wav2vec 2.0 fine-tuning schedule: warm up, hold, decay linearly; the
backbone and the head each at their own peak rate, the backbone optionally held at 0 for a
head-only phase first."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from hpo.kinds.w2v.config import peak_rates

BACKBONE, HEAD = "backbone", "head"  # the optimizer's parameter groups, by name


@dataclass(frozen=True)
class Phases:
    warmup: int
    hold: int
    decay: int
    # Updates before the warm-up at rate 0: the backbone's during the head-only phase.
    frozen: int = 0


@dataclass(frozen=True)
class FoldPlan:
    """A fold's optimizer steps, counted once for both training paths."""

    total: int
    phases: Phases  # the head's (the probe's only one): over all updates
    log_every: int  # TensorBoard scalars every this many steps (about 50 points a fold)
    epochs: float = 0.0  # the fold's epochs (a trial's own when they are searched)
    # Fine-tuning's backbone: frozen for the head-only phase, then its own tri-stage over
    # the updates left (None: as ``phases``).
    backbone: Phases | None = None


def plan_fold(n_examples: int, t: dict[str, Any]) -> FoldPlan:
    """The plan for ``n_examples`` training clips under ``[training]`` settings ``t`` (the
    probe has no ``gradient_accumulation``: one batch, one update)."""
    acc = t.get("gradient_accumulation", 1)
    total = math.ceil(updates_per_epoch(n_examples, t["batch_size"], acc) * t["epochs"])
    w, h = t["warmup_ratio"], t["hold_ratio"]
    head_only = min(round(t.get("head_only_ratio", 0.0) * total), total)
    return FoldPlan(
        total,
        phases(total, w, h),
        t.get("logging_steps") or max(1, total // 50),
        float(t["epochs"]),
        dataclasses.replace(phases(total - head_only, w, h), frozen=head_only),
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


def make_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, backbone_lr: float | None = None
) -> torch.optim.AdamW:
    """AdamW with PyTorch's defaults but for the rates and weight decay.

    Weight decay applies to weight matrices only; biases, norm scales and the pooling's
    layer weights (all 1-D) are not decayed, as in BERT/wav2vec 2.0 fine-tuning. With
    ``backbone_lr``, the parameters under ``model.backbone`` learn at that rate (groups named
    ``BACKBONE``) and the rest, the head, at ``lr`` (groups named ``HEAD``).
    """
    parts = {HEAD: list(model.named_parameters())}
    if backbone_lr is not None:
        parts = {
            BACKBONE: [(n, p) for n, p in parts[HEAD] if n.startswith("backbone.")],
            HEAD: [(n, p) for n, p in parts[HEAD] if not n.startswith("backbone.")],
        }
    groups = []
    for name, named in parts.items():
        rate = lr if name == HEAD else backbone_lr
        trained = [p for _, p in named if p.requires_grad]  # the frozen CNN is left out
        for decay, params in (
            (weight_decay, [p for p in trained if p.ndim >= 2]),
            (0.0, [p for p in trained if p.ndim < 2]),
        ):
            groups.append({"params": params, "weight_decay": decay, "lr": rate, "name": name})
    return torch.optim.AdamW(groups, lr=lr)


def finetune_optimizer(model: torch.nn.Module, t: dict[str, Any]) -> torch.optim.AdamW:
    """The fine-tuning optimizer: backbone and head at their own peak rates."""
    backbone, head = peak_rates(t)
    return make_optimizer(model, head, t["weight_decay"], backbone)


def tri_stage(ph: Phases, step: int) -> float:
    """The rate at optimizer step ``step`` as a share of the peak: 0 while frozen, then
    linear warm-up from 0, hold, linear decay to 0 (transformers' ``get_wsd_schedule`` with
    ``decay_type="linear"``, step for step; tests/kinds/w2v/test_schedule.py checks)."""
    step -= ph.frozen
    if step < 0:
        return 0.0
    if step < ph.warmup:
        return step / ph.warmup
    if step < ph.warmup + ph.hold:
        return 1.0
    if step < ph.warmup + ph.hold + ph.decay:
        return 1.0 - (step - ph.warmup - ph.hold) / ph.decay
    return 0.0


def make_schedule(
    optimizer: torch.optim.Optimizer, ph: Phases, backbone: Phases | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """The tri-stage schedule ``ph`` for every group, ``backbone`` (when given) for the
    backbone's groups. Not the Trainer's ``warmup_stable_decay``: its one LambdaLR
    function serves every group, and the backbone's schedule starts after the head-only
    phase while the head's starts at step 0."""
    fns = [
        partial(tri_stage, backbone if backbone and g.get("name") == BACKBONE else ph)
        for g in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fns)
