"""Mixed precision: every pooling, the classifier, the loss and the probe heads run forward
and backward under autocast, with float32 hidden states coming in (what a backbone's layer
norms give under autocast), on the test device: bf16 everywhere, fp16 where the device
has it. On a CPU this is ``torch.autocast("cpu", dtype=torch.bfloat16)``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hpo.kinds.w2v.backbone import new_classifier
from hpo.kinds.w2v.config import LEGACY_POOLING, POOLINGS
from hpo.kinds.w2v.pooling import LayerMix, make_pooling
from hpo.kinds.w2v.probe.head import ProbeHead

HIDDEN, STATES = 16, 3


def _mask(device: torch.device) -> torch.Tensor:
    lengths = torch.tensor([7, 3], device=device)
    return torch.arange(7, device=device)[None] < lengths[:, None]


def _finite_grads(module: nn.Module) -> bool:
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    return bool(grads) and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_pooling_runs_forward_and_backward_under_autocast(
    pooling: str, device: torch.device, precisions: list[torch.dtype]
) -> None:
    for dtype in precisions:
        torch.manual_seed(0)
        if pooling == LEGACY_POOLING:  # the mean of the learned layer mix
            mix = LayerMix(STATES).to(device)
            mean, width = make_pooling("mean", HIDDEN)
            pool = lambda h, m, mix=mix, mean=mean: mean(mix(h), m)  # noqa: E731
        else:
            pool, width = make_pooling(pooling, HIDDEN)
            pool.to(device)
        head = nn.Sequential(nn.Linear(width, 8)).to(device)
        shape = (STATES, 2, 7, HIDDEN) if pooling == "layer_weighted" else (2, 7, HIDDEN)
        h = torch.randn(*shape, device=device, requires_grad=True)  # float32 in
        with torch.autocast(device.type, dtype=dtype):
            logits = head(pool(h, _mask(device)))
            loss = nn.functional.cross_entropy(logits.float(), torch.tensor([1, 2], device=device))
        loss.backward()
        assert torch.isfinite(loss), (pooling, dtype)
        assert h.grad is not None and torch.isfinite(h.grad).all(), (pooling, dtype)
        # The padded frames of the second clip get no gradient: the mask holds under autocast.
        frames = h.grad if pooling != "layer_weighted" else h.grad.sum(0)
        assert torch.count_nonzero(frames[1, 3:]) == 0, (pooling, dtype)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_the_classifier_trains_under_autocast(
    pooling: str, device: torch.device, precisions: list[torch.dtype]
) -> None:
    model = new_classifier("tiny", {"pooling": pooling, "dropout": 0.1}, 0, 8).to(device).train()
    x = torch.randn(2, 16_000, device=device) * 0.1
    lengths = torch.tensor([16_000, 9_000], device=device)
    labels = torch.tensor([0, 5], device=device)
    for dtype in precisions:
        model.zero_grad()
        with torch.autocast(device.type, dtype=dtype):
            out = model(input_values=x, lengths=lengths, labels=labels)
        out.loss.backward()
        assert out.logits.dtype == torch.float32 and torch.isfinite(out.loss), (pooling, dtype)
        assert _finite_grads(model.pooler) or not list(model.pooler.parameters())
        assert _finite_grads(model.classifier), (pooling, dtype)


@pytest.mark.parametrize("head_name", ["linear", "superb"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_probe_head_trains_under_autocast(
    pooling: str, head_name: str, device: torch.device, precisions: list[torch.dtype]
) -> None:
    torch.manual_seed(0)
    head = ProbeHead(pooling, HIDDEN, STATES, 0.1, 8, head=head_name, standardize=True)
    head.to(device).train()
    with torch.no_grad():  # statistics as a fold's would be: not the identity
        head.scaler.mean.normal_()
        head.scaler.std.uniform_(0.5, 2.0)
    # What ProbeInputs hands over: per-clip statistics, or one layer's frames with a mask.
    x, mask = {
        "layer_weighted": (torch.randn(2, STATES, HIDDEN), None),
        "mean": (torch.randn(2, HIDDEN), None),
        "max": (torch.randn(2, HIDDEN), None),
        "stats": (torch.randn(2, 2 * HIDDEN), None),
        "attention": (torch.randn(2, 7, HIDDEN), _mask(torch.device("cpu"))),
    }[pooling]
    x = x.to(device)
    mask = None if mask is None else mask.to(device)
    for dtype in precisions:
        head.zero_grad()
        with torch.autocast(device.type, dtype=dtype):
            logits = head(x, mask)
            loss = nn.functional.cross_entropy(logits, torch.tensor([3, 4], device=device))
        loss.backward()
        assert logits.dtype == torch.float32 and torch.isfinite(loss), (pooling, dtype)
        assert _finite_grads(head), (pooling, dtype)
