from __future__ import annotations

import pytest
import torch

from hpo.kinds.w2v.config import peak_rates
from hpo.kinds.w2v.schedule import (
    BACKBONE,
    HEAD,
    finetune_optimizer,
    make_optimizer,
    make_schedule,
    phases,
    plan_fold,
    updates_per_epoch,
)


def _lrs(total: int, warmup_ratio: float, lr: float = 1e-3) -> list[float]:
    model = torch.nn.Linear(4, 2)
    opt = make_optimizer(model, lr, 0.01)
    sched = make_schedule(opt, phases(total, warmup_ratio, 0.4))
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_tri_stage_boundaries_on_a_real_optimizer() -> None:
    lr = _lrs(100, 0.1)
    # Warm-up: 0 -> peak linearly over the first 10% of updates.
    assert lr[0] == 0.0 and lr[5] == pytest.approx(5e-4) and lr[10] == pytest.approx(1e-3)
    # Hold: constant for the next 40%.
    assert all(x == pytest.approx(1e-3) for x in lr[10:51])
    # Decay: linear (not cosine) to 0 over the rest.
    assert lr[75] == pytest.approx(5e-4) and lr[60] == pytest.approx(8e-4)
    assert lr[100] == pytest.approx(0.0, abs=1e-12)


def test_warmup_ratio_is_a_fraction_of_this_folds_updates() -> None:
    ph = phases(333, 0.2, 0.4)
    assert (ph.warmup, ph.hold, ph.decay) == (67, 133, 133)
    lr = _lrs(333, 0.2)
    assert max(lr) == pytest.approx(1e-3) and lr.index(max(lr)) == 67


def test_updates_per_epoch_counts_partial_batches_and_accumulation() -> None:
    assert updates_per_epoch(1200, 8, 1) == 150
    assert updates_per_epoch(1201, 8, 1) == 151
    assert updates_per_epoch(1200, 8, 4) == 38  # 150 batches / 4 -> 37 full + 1 partial


def test_optimizer_is_adamw_with_torch_defaults_and_no_decay_on_1d() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = make_optimizer(model, 3e-5, 0.05)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["eps"] == 1e-8
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])


def _trainer_lrs(total: int, ph, out: str) -> list[float]:
    """The Trainer's own warmup_stable_decay schedule, as TrainingArguments would build it."""
    from transformers import Trainer, TrainingArguments

    model = torch.nn.Linear(4, 2)
    args = TrainingArguments(
        output_dir=out,
        learning_rate=1e-3,
        lr_scheduler_type="warmup_stable_decay",
        warmup_steps=ph.warmup,
        lr_scheduler_kwargs={
            "num_stable_steps": ph.hold,
            "num_decay_steps": ph.decay,
            "decay_type": "linear",
        },
        report_to="none",
        use_cpu=True,
    )
    trainer = Trainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(total)
    opt, sched = trainer.optimizer, trainer.lr_scheduler
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


# The Trainer passes num_training_steps beside num_stable_steps, and transformers warns.
@pytest.mark.filterwarnings("ignore:Both num_training_steps and num_stable_steps")
@pytest.mark.parametrize(("total", "warmup_ratio"), [(100, 0.1), (333, 0.2), (7, 0.0), (5, 0.3)])
def test_the_schedule_is_the_trainers_warmup_stable_decay_with_linear_decay(
    tmp_path, total: int, warmup_ratio: float
) -> None:
    # Our hand-built LambdaLR (needed for a schedule per parameter group) gives, step for
    # step, the rate the Trainer's own scheduler gives for the same phases.
    ph = phases(total, warmup_ratio, 0.4)
    trainers = _trainer_lrs(total, ph, str(tmp_path))
    assert _lrs(total, warmup_ratio) == pytest.approx(trainers, abs=1e-15)


class _Classifier(torch.nn.Module):
    """A backbone (a frozen CNN and a trained layer) and a head, named as EmotionClassifier's."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torch.nn.Module()
        self.backbone.cnn = torch.nn.Linear(4, 4).requires_grad_(False)
        self.backbone.layer = torch.nn.Linear(4, 4)
        self.classifier = torch.nn.Linear(4, 2)


def test_backbone_and_head_learn_at_their_own_rates_the_backbone_after_the_head_only_phase():
    t = {"epochs": 1.0, "batch_size": 1, "warmup_ratio": 0.2, "hold_ratio": 0.4}
    t |= {"head_only_ratio": 0.5, "backbone_lr": 1e-5, "head_lr_ratio": 10.0}
    t |= {"learning_rate": 5e-5, "weight_decay": 0.01}
    plan = plan_fold(20, t)  # 20 updates
    # The head's tri-stage runs over all 20; the backbone's over the 10 after the first 10.
    assert (plan.phases.warmup, plan.phases.hold, plan.phases.decay) == (4, 8, 8)
    b = plan.backbone
    assert (b.frozen, b.warmup, b.hold, b.decay) == (10, 2, 4, 4)
    model = _Classifier()
    opt = finetune_optimizer(model, t)
    sched = make_schedule(opt, plan.phases, plan.backbone)
    rates = {BACKBONE: [], HEAD: []}
    for _ in range(plan.total):
        for g in opt.param_groups[::2]:  # one group of each name (decayed, then not)
            rates[g["name"]].append(g["lr"])
        opt.step()
        sched.step()
    head, backbone = rates[HEAD], rates[BACKBONE]
    assert max(head) == pytest.approx(1e-4) and head.index(max(head)) == 4
    assert backbone[:11] == [0.0] * 11  # frozen, then its warm-up starts from 0
    assert backbone[11] == pytest.approx(0.5e-5) and max(backbone) == pytest.approx(1e-5)
    assert backbone.index(max(backbone)) == 12 and head[12] == pytest.approx(1e-4)
    # The frozen CNN is in no group; the trained layer is the backbone's, the rest the head's.
    named = {id(p): n for n, p in model.named_parameters()}
    groups = {g["name"]: {named[id(p)] for p in g["params"]} for g in opt.param_groups[:1]}
    groups |= {g["name"]: {named[id(p)] for p in g["params"]} for g in opt.param_groups[2:3]}
    assert groups == {BACKBONE: {"backbone.layer.weight"}, HEAD: {"classifier.weight"}}
    assert all(
        g["weight_decay"] == (0.01 if i % 2 == 0 else 0.0) for i, g in enumerate(opt.param_groups)
    )


@pytest.mark.parametrize(
    ("training", "rates"),
    [
        ({"learning_rate": 3e-4}, (3e-4, 3e-4)),  # an older study: one rate for both
        ({"learning_rate": 5e-5, "backbone_lr": 2e-5}, (2e-5, 2e-5)),
        ({"learning_rate": 5e-5, "backbone_lr": 2e-5, "head_lr_ratio": 10.0}, (2e-5, 2e-4)),
        ({"learning_rate": 1e-5, "head_lr_ratio": 10.0}, (1e-5, 1e-4)),
    ],
)
def test_peak_rates(training: dict, rates: tuple[float, float]) -> None:
    assert peak_rates(training) == pytest.approx(rates)
