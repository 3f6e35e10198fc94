"""The literature's fine-tuning recipe on the Trainer: backbone and head at their own rates,
a head-only phase that leaves the backbone untouched, gradient accumulation that averages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hpo.kinds import load_spec
from hpo.kinds.w2v.backbone import new_classifier
from hpo.kinds.w2v.monitor import FoldMonitor
from hpo.kinds.w2v.schedule import plan_fold
from tests.helpers import write_spec

LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])


class _Steps(FoldMonitor):
    """A monitor keeping each step's loss and gradient norm, and ``snap()`` after it."""

    def __init__(self, snap=None) -> None:
        super().__init__(0, 1.0, None, 1, None)
        self.snap, self.losses, self.norms, self.snaps = snap, [], [], []

    def step(self, step, loss, lr, grad_norm):
        self.losses.append(loss)
        self.norms.append(grad_norm)
        if self.snap:
            self.snaps.append(self.snap())
        super().step(step, loss, lr, grad_norm)


def _tiny():
    return new_classifier("tiny", {"pooling": "mean", "dropout": 0.0}, 0, 3)


def _train(tmp_path: Path, model, monitor: _Steps, **training) -> _Steps:
    """``model`` trained on 8 clips of equal length (no padding) under w2v-tiny's settings
    and ``training``, logging every step to ``monitor``."""
    from hpo.kinds.w2v.finetune.data import fold_examples
    from hpo.kinds.w2v.finetune.train import train_fold

    waves = [np.random.default_rng(i).normal(0, 0.1, 8_000).astype(np.float32) for i in range(8)]
    t = load_spec(write_spec(tmp_path / "s.toml", base="w2v-tiny")).settings.merged({})
    t = t["training"] | {"feature_cache": False, "class_weight": "none", "logging_steps": 1}
    t |= {"max_grad_norm": "off", "warmup_ratio": 0.0, "learning_rate": 1e-3, "epochs": 1.0}
    t |= training
    with monitor:
        train_fold(
            model,
            t,
            fold_examples(range(8), LABELS, np.full(8, 8_000)),
            None,
            monitor,
            plan_fold(8, t),
            waves=waves,
        )
    return monitor


def _backbone(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


def _head(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.head_state().items()}


@pytest.mark.slow  # Trainer runs of the tiny model
def test_the_head_only_phase_leaves_the_backbone_byte_identical_then_trains_it(
    tmp_path: Path,
) -> None:
    model = _tiny()
    start, head_start = _backbone(model), _head(model)
    monitor = _Steps(lambda: (_backbone(model), _head(model)))
    # 8 clips in batches of 2, 2 epochs: 8 updates, the first 4 (half) the head's alone.
    _train(tmp_path, model, monitor, batch_size=2, epochs=2.0, head_only_ratio=0.5)
    assert len(monitor.snaps) == 8
    for step, (backbone, head) in enumerate(monitor.snaps, start=1):
        same = all(torch.equal(backbone[k], start[k]) for k in start)
        # Byte for byte the loaded backbone through update 4; trained from update 5 on.
        assert same is (step <= 4), step
        # The head trains from the first update.
        assert not all(torch.equal(head[k], head_start[k]) for k in head_start)
    # Trainable again afterwards; the CNN, never trained, still frozen.
    assert all(
        p.requires_grad
        for n, p in model.backbone.named_parameters()
        if not n.startswith("feature_extractor.")
    )
    assert not any(p.requires_grad for p in model.backbone.feature_extractor.parameters())


@pytest.mark.slow  # Trainer runs of the tiny model
def test_gradient_accumulation_averages_micro_batches_as_one_batch(tmp_path: Path) -> None:
    # One update on the same 8 clips: one batch of 8, or 2 accumulated batches of 4. The
    # loss of each is its clips' mean, so the accumulated gradient must be their mean too:
    # the Trainer divides by 2 only when the model does not claim to normalise it itself.
    whole = _train(tmp_path, _tiny(), _Steps(), batch_size=8, gradient_accumulation=1)
    halves = _train(tmp_path, _tiny(), _Steps(), batch_size=4, gradient_accumulation=2)
    assert len(whole.norms) == len(halves.norms) == 1
    assert halves.losses[0] == pytest.approx(whole.losses[0], rel=1e-4)
    assert halves.norms[0] == pytest.approx(whole.norms[0], rel=1e-3)


def test_learning_rate_and_backbone_lr_together_are_refused_in_one_line(tmp_path: Path) -> None:
    from hpo.errors import SpecError

    # studies/w2v.toml searches backbone_lr; an older name for the same rate beside it would
    # leave one of the two unused.
    for sections in (
        {"training": {"learning_rate": 1e-5}},
        {"space": {"learning_rate": {"type": "float", "low": 1e-6, "high": 1e-4}}},
    ):
        path = write_spec(tmp_path / "s.toml", base="w2v", **sections)
        with pytest.raises(SpecError, match="learning_rate and backbone_lr both set"):
            load_spec(path)


@pytest.mark.parametrize(
    ("key", "table", "needle"),
    [
        ("head_only_ratio", {"type": "float", "low": 0.0, "high": 1.0}, "can draw 1.0"),
        ("head_lr_ratio", {"type": "float", "low": 0.0, "high": 10.0}, "can draw 0.0"),
        ("epochs", {"type": "categorical", "choices": [10, 0]}, "can draw 0"),
        ("backbone_lr", {"type": "float", "low": -1.0, "high": 1e-4}, "can draw -1.0"),
        ("warmup_ratio", {"type": "float", "low": 0.1, "high": 0.7}, "warmup_ratio + hold_ratio"),
    ],
)
def test_a_space_that_can_draw_a_refused_value_is_refused(
    tmp_path: Path, key: str, table: dict, needle: str
) -> None:
    from hpo.errors import SpecError

    path = write_spec(tmp_path / "s.toml", base="w2v", space={key: table})
    with pytest.raises(SpecError, match=rf"\[space\.{key}\] .*{re.escape(needle)}"):
        load_spec(path)


def test_an_older_study_rebuilds_with_one_rate_for_backbone_and_head() -> None:
    # A study stored before backbone_lr searched learning_rate: `hpo export` and `hpo rerun`
    # rebuild it from its stored definition, and both groups train at the rate it drew.
    import tomllib

    from hpo.kinds import stored_spec
    from hpo.kinds.w2v.config import peak_rates
    from tests.helpers import ROOT

    raw = tomllib.loads((ROOT / "studies" / "w2v.toml").read_text())
    for key in ("backbone_lr", "head_lr_ratio", "head_only_ratio"):
        raw["training"].pop(key)
    for key in ("backbone_lr", "head_lr_ratio", "head_only_ratio", "epochs"):
        raw["space"].pop(key)
    raw["space"]["learning_rate"] = {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}
    spec = stored_spec(raw, "w2v")
    t = spec.settings.merged({"learning_rate": 3e-4})["training"]
    assert peak_rates(t) == (3e-4, 3e-4)
    assert plan_fold(1200, t).backbone.frozen == 0  # no head-only phase either
    # The shipped study: the backbone at the drawn rate, the head at the drawn multiple.
    shipped = load_spec("w2v").settings.merged({"backbone_lr": 2e-5, "head_lr_ratio": 10.0})
    assert peak_rates(shipped["training"]) == pytest.approx((2e-5, 2e-4))
