"""The probe's head and what it reads.

The head is the fine-tuning classifier's own head (``pooling.py`` modules, the same
parameter names), fed from the layer cache instead of a live backbone: a parameter-free
pooling of a frozen layer is a per-clip statistic (``mean``: the layer's mean;
``layer_weighted``: the softmax-weighted sum of every layer's mean, which is the mean of
the weighted sum; ``max``; ``stats``), so an epoch is a few matrix products; ``attention``
gathers the chosen layer's frames. Everything the head reads lives on the training device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from hpo.kinds.w2v.pooling import make_pooling
from hpo.kinds.w2v.probe.layers import LayerCache


class ProbeInputs:
    """What the head of a given pooling reads, for every clip, from the layer cache."""

    def __init__(
        self,
        cache: LayerCache,
        pooling: str,
        layer: int,
        device: torch.device | str = "cpu",
        log: Callable[[str], None] | None = None,
    ) -> None:
        from hpo.kinds.w2v.bank import FeatureCache, FrameBank
        from hpo.kinds.w2v.device import place_cache

        self.pooling, self.layer = pooling, layer % cache.n_layers
        device = torch.device(device)
        means = torch.from_numpy(cache.means)
        self.x: torch.Tensor | None = None
        self.bank = None
        if pooling == "layer_weighted":
            self.x = means  # (N, L+1, H)
        elif pooling == "mean":
            self.x = means[:, self.layer]
        elif pooling in ("max", "stats"):
            mx, sd = cache.clip_stats(self.layer)
            mx_t, sd_t = torch.from_numpy(mx), torch.from_numpy(sd)
            self.x = mx_t if pooling == "max" else torch.cat([means[:, self.layer], sd_t], -1)
        else:  # attention: the layer's frames (half precision, as cached), a batch one gather
            frames = FeatureCache(cache.layer(self.layer), cache.offsets)
            self.bank = place_cache(frames.nbytes, device, lambda d: FrameBank(frames, d), log)
        if self.x is not None:
            self.x = self.x.contiguous().to(device)
        self.device = device

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's input for clips ``idx`` (a tensor of indices) and the frame mask."""
        if self.x is not None:
            return self.x[idx.to(self.x.device)], None
        assert self.bank is not None
        feats, lengths = self.bank.batch(idx)
        feats = feats.to(self.device).float()
        mask = (
            torch.arange(feats.shape[1], device=self.device)[None]
            < lengths.to(self.device)[:, None]
        )
        return feats, mask


class ProbeHead(nn.Module):
    """Pooling + dropout + classifier, with the fine-tuning classifier's parameter names."""

    def __init__(
        self, pooling: str, hidden: int, n_states: int, dropout: float, n_labels: int
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.pooler, width = make_pooling(pooling, hidden, n_states)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, n_labels)
        if pooling == "layer_weighted":
            nn.init.zeros_(self.pooler.layer_logits)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "layer_weighted":  # mean of the weighted sum = weighted sum of means
            pooled = (self.pooler.weights()[None, :, None] * x.float()).sum(1)
        elif self.pooling == "attention":
            pooled = self.pooler(x, mask)
        else:  # mean / max / stats are already the pooled statistics
            pooled = x
        return self.classifier(self.dropout(pooled)).float()
