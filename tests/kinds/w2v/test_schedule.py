from __future__ import annotations

import pytest
import torch

from hpo.kinds.w2v.schedule import make_optimizer, make_schedule, phases, updates_per_epoch


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
