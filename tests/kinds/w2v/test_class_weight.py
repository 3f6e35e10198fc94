"""``[training] class_weight``: the cross-entropy of both paths weighs each emotion alike,
from each fold's training clips only (UAR, the shipped metric, scores each emotion alike)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch
from torch import nn

from hpo.config.study import spec_hash
from hpo.kinds import load_spec
from hpo.kinds.w2v.backbone import new_classifier
from hpo.kinds.w2v.config import class_weights
from hpo.kinds.w2v.monitor import FoldMonitor
from hpo.kinds.w2v.probe.head import ProbeHead
from hpo.kinds.w2v.probe.train import train_head
from hpo.kinds.w2v.schedule import plan_fold
from tests.helpers import write_spec

# 6 clips of class 0 and 2 of class 1 to train on; 4 of class 1 to validate on. Counted
# over all 12 clips the two classes would be even (weights 1, 1): balanced over the
# training clips alone they are 8 / (2 x 6) and 8 / (2 x 2).
TRAIN_Y = [0] * 6 + [1] * 2
VALID_Y = [1] * 4
BALANCED = [8 / 12, 2.0, 1.0]  # class 2 has no training clip: never a target, weight unused


def test_balanced_weights_count_the_training_clips_only() -> None:
    np.testing.assert_allclose(class_weights(np.array(TRAIN_Y), 3, "balanced"), BALANCED)
    assert class_weights(np.array(TRAIN_Y), 3, "none") is None


def _study_file(tmp_path: Path, metric: str, class_weight: str | None) -> Path:
    """studies/w2v.toml under ``metric``, with ``class_weight`` written, or left out."""
    path = write_spec(tmp_path / f"{metric}-{class_weight}.toml", base="w2v")
    raw = tomllib.loads(path.read_text())
    raw["objective"]["metric"] = metric
    raw["training"].pop("class_weight", None)
    if class_weight:
        raw["training"]["class_weight"] = class_weight
    path.write_text(tomli_w.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("metric", "written", "used"),
    [
        ("uar", None, "balanced"),
        ("uar", "auto", "balanced"),
        ("accuracy", None, "none"),
        ("accuracy", "auto", "none"),
        ("uar", "none", "none"),
        ("accuracy", "balanced", "balanced"),
    ],
)
def test_auto_weighs_the_classes_when_the_metric_is_uar(
    tmp_path: Path, metric: str, written: str | None, used: str
) -> None:
    spec = load_spec(_study_file(tmp_path, metric, written))
    assert spec.settings.training.class_weight == used
    # What `hpo export` writes and `hpo train` trains with.
    assert spec.settings.merged({})["training"]["class_weight"] == used


@pytest.mark.parametrize(("metric", "changed"), [("uar", True), ("accuracy", False)])
def test_an_older_uar_study_is_refused_as_changed_not_reweighted(
    tmp_path: Path, metric: str, changed: bool
) -> None:
    # A file without the key, as every study file before it: under "uar" it now means a
    # weighted loss, so its hash is not the one an older hpo stored for it (resuming needs
    # --allow-changed-spec); under "accuracy" it means what it meant, and the hash matches.
    path = _study_file(tmp_path, metric, None)
    spec = load_spec(path)
    stored_by_older_hpo = spec_hash(tomllib.loads(path.read_text()), spec.settings.OPERATIONAL)
    assert (spec.hash != stored_by_older_hpo) is changed


def test_a_wrong_value_is_refused_in_one_line(tmp_path: Path) -> None:
    from hpo.errors import SpecError

    path = write_spec(tmp_path / "s.toml", base="w2v", training={"class_weight": "inverse"})
    with pytest.raises(SpecError, match=r"\[training\]: 'class_weight' must be one of 'auto'"):
        load_spec(path)


def test_the_fine_tuning_loss_uses_the_weights() -> None:
    torch.manual_seed(0)
    model = new_classifier("tiny", {"pooling": "mean", "dropout": 0.0}, 0, 3).eval()
    wave = torch.randn(8, 8_000) * 0.1
    lengths = torch.full((8,), 8_000)
    labels = torch.tensor(TRAIN_Y)
    with torch.no_grad():
        plain = model(input_values=wave, lengths=lengths, labels=labels)
        model.class_weight = torch.tensor(BALANCED)
        weighted = model(input_values=wave, lengths=lengths, labels=labels)
    expected = nn.functional.cross_entropy(plain.logits, labels, weight=torch.tensor(BALANCED))
    torch.testing.assert_close(weighted.loss, expected)
    assert not torch.isclose(weighted.loss, plain.loss)


class _Losses(FoldMonitor):
    """The monitor ``hpo train`` uses, keeping every step's loss."""

    def __init__(self, tb: Path, epochs: float) -> None:
        super().__init__(0, epochs, tb, 1, None)
        self.losses: list[float] = []

    def step(self, step, loss, lr, grad_norm):
        self.losses.append(loss)
        super().step(step, loss, lr, grad_norm)


class _Pooled:
    """Pooled features of every clip, as ``ProbeInputs`` holds them for mean pooling."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def batch(self, idx: torch.Tensor):
        return self.x[idx], None


@pytest.mark.parametrize("mode", ["balanced", "none"])
def test_the_probe_head_trains_on_the_training_clips_weights(tmp_path: Path, mode: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(12, 4)
    y = torch.tensor(TRAIN_Y + VALID_Y)
    train, valid = np.arange(8), np.arange(8, 12)
    head = ProbeHead("mean", 4, 1, 0.0, 3)
    with torch.no_grad():  # the first step's loss: the untrained head on every training clip
        first = head(x[:8], None)
    t = {
        "epochs": 1.0,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "warmup_ratio": 0.0,
        "hold_ratio": 0.0,
        "max_grad_norm": "off",
        "seed": 0,
        "eval_every_epoch": True,
        "class_weight": mode,
    }
    with _Losses(tmp_path, 1.0) as monitor:
        train_head(head, _Pooled(x), y, train, valid, t, monitor, plan_fold(8, t))
    weight = torch.tensor(BALANCED) if mode == "balanced" else None
    expected = nn.functional.cross_entropy(first, y[:8], weight=weight)
    assert monitor.losses[0] == pytest.approx(float(expected), rel=1e-6)
    if mode == "balanced":
        assert monitor.losses[0] != pytest.approx(float(nn.functional.cross_entropy(first, y[:8])))


@pytest.mark.slow  # a Trainer run of the tiny model
def test_fine_tuning_weighs_the_classes_of_its_training_clips(tmp_path: Path) -> None:
    from hpo.kinds.w2v.finetune.data import fold_examples
    from hpo.kinds.w2v.finetune.train import train_fold

    torch.manual_seed(0)
    model = new_classifier("tiny", {"pooling": "mean", "dropout": 0.0}, 0, 3)
    waves = [np.random.default_rng(i).normal(0, 0.1, 8_000).astype(np.float32) for i in range(12)]
    labels = np.array(TRAIN_Y + VALID_Y)
    t = load_spec(write_spec(tmp_path / "s.toml", base="w2v-tiny")).settings.merged({})
    t = t["training"] | {"epochs": 1.0, "batch_size": 8, "feature_cache": False}
    lengths = np.full(12, 8_000)
    plan = plan_fold(8, t)
    with _Losses(tmp_path, 1.0) as monitor:
        train_fold(
            model,
            t,
            fold_examples(range(8), labels, lengths),
            fold_examples(range(8, 12), labels, lengths),
            monitor,
            plan,
            waves=waves,
        )
    assert t["class_weight"] == "balanced"  # the shipped w2v-tiny study's metric is uar
    torch.testing.assert_close(model.class_weight, torch.tensor(BALANCED))


def test_a_stored_older_uar_study_is_rebuilt_unweighted_as_it_ran() -> None:
    # hpo export and hpo rerun rebuild a study from its stored definition: a w2v study that
    # an older hpo ran (no class_weight key) trained unweighted, whatever its metric.
    import tomllib

    from hpo.kinds import spec_from_dict, stored_spec
    from tests.helpers import ROOT

    raw = tomllib.loads((ROOT / "studies" / "w2v.toml").read_text())
    raw["objective"]["metric"] = "uar"
    raw["training"].pop("class_weight", None)
    assert stored_spec(raw, "w2v").settings.training.class_weight == "none"
    assert "class_weight" not in raw["training"]  # the stored definition is not changed
    # A study file read today means what it says: auto under uar is balanced.
    assert spec_from_dict(raw, ROOT / "w2v.toml").settings.training.class_weight == "balanced"
