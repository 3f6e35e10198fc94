"""Utterance pooling over encoder frames; every strategy honours the padding mask.

Poolings reduce in float32 whatever the autocast precision: a bf16 sum over hundreds of
frames loses digits, and fp16 squares overflow above 256. A value written into a tensor
(a mask's fill value) is taken from that tensor's own dtype: under autocast, a linear
layer's output is bf16 even when its input is float32.
"""

from __future__ import annotations

import torch
from torch import nn

STATS_EPS = 1e-6  # added to a float32 variance before its square root (probe stats: the same)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames of ``h`` (B, T, H) with ``mask`` (B, T) bool, in float32."""
    h = h.float()
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class MeanPooling(nn.Module):
    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(h, mask)


class MaxPooling(nn.Module):
    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = h.float()
        return h.masked_fill(~mask.unsqueeze(-1), torch.finfo(h.dtype).min).amax(1)


class StatsPooling(nn.Module):
    """Mean and standard deviation over valid frames (output is twice as wide)."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean = masked_mean(h, mask)
        var = masked_mean((h.float() - mean.unsqueeze(1)) ** 2, mask)
        return torch.cat([mean, (var + STATS_EPS).sqrt()], dim=-1)


class AttentionPooling(nn.Module):
    """A learned score per frame, softmax over the valid frames, weighted sum."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.score(h).squeeze(-1).float()
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
        w = torch.softmax(s, dim=1).unsqueeze(-1)
        return (w * h.float()).sum(1)


class LayerMix(nn.Module):
    """A learned softmax-weighted sum of all L+1 states (``probe_layer = "weighted"``; SUPERB's
    featurizer). Its logits start at zero: an even mix of layers."""

    def __init__(self, n_states: int) -> None:
        super().__init__()
        self.layer_logits = nn.Parameter(torch.zeros(n_states))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.layer_logits.float(), dim=0)

    def forward(self, states: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """The mix over axis ``dim`` of ``states`` (L+1 states, or their per-clip means)."""
        shape = [1] * states.dim()
        shape[dim] = -1
        return (self.weights().view(shape) * states.float()).sum(dim)


def make_pooling(name: str, hidden: int) -> tuple[nn.Module, int]:
    """The pooling module and the width of its output."""
    if name == "mean":
        return MeanPooling(), hidden
    if name == "max":
        return MaxPooling(), hidden
    if name == "stats":
        return StatsPooling(), 2 * hidden
    if name == "attention":
        return AttentionPooling(hidden), hidden
    raise ValueError(f"unknown pooling {name!r}")
