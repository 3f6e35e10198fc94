"""Each layer's features standardised before the head, with statistics of a fold's training
clips only.

A probe's head reads frozen features whose scale differs by orders of magnitude between
dimensions and layers; a linear head with weight decay then mostly sees the few largest
dimensions. ``LayerScaler`` z-scores every layer's frames with the mean and standard
deviation over the frames of the clips it is fitted on (a fold's training clips, never its
validation clips; every clip for ``hpo train``). Its statistics are buffers of the head, so
the saved classifier applies exactly the statistics it was trained with.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Below this a feature is taken as constant: centred, not scaled (scikit-learn's
# StandardScaler does the same rather than divide by about zero).
MIN_STD = 1e-6


def frame_moments(
    means: np.ndarray, sq_means: np.ndarray, lengths: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per layer and dimension, (L+1, H), over every frame of clips ``idx``,
    from each clip's frame mean and mean square (clips, L+1, H) and its frame count."""
    idx = np.asarray(idx)
    n = np.asarray(lengths, dtype=np.float64)[idx]
    w = n / n.sum()  # each frame counts once, as if the frames were pooled together
    mu = np.einsum("i,ilh->lh", w, np.asarray(means[idx], dtype=np.float64))
    e2 = np.einsum("i,ilh->lh", w, np.asarray(sq_means[idx], dtype=np.float64))
    std = np.sqrt(np.maximum(e2 - mu**2, 0.0))
    std[std < MIN_STD] = 1.0
    return mu, std


class LayerScaler(nn.Module):
    """Per-layer (mean, std) of frames, (L+1, H) each, as buffers (saved with the head)."""

    def __init__(self, n_states: int, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_states, hidden))
        self.register_buffer("std", torch.ones(n_states, hidden))

    @torch.no_grad()
    def fit(
        self, means: np.ndarray, sq_means: np.ndarray, lengths: np.ndarray, idx: np.ndarray
    ) -> None:
        """Statistics of the frames of clips ``idx`` only (see ``frame_moments``)."""
        mu, std = frame_moments(means, sq_means, lengths, idx)
        self.mean.copy_(torch.from_numpy(mu))
        self.std.copy_(torch.from_numpy(std))

    def forward(self, x: torch.Tensor, layer: int | None) -> torch.Tensor:
        """``x`` standardised, in float32: features of one ``layer`` (..., H), or of every
        layer (layer None) with the layer axis first (L+1, ..., H)."""
        if layer is None:
            shape = (self.mean.shape[0],) + (1,) * (x.dim() - 2) + (self.mean.shape[1],)
            return (x.float() - self.mean.view(shape)) / self.std.view(shape)
        return (x.float() - self.mean[layer]) / self.std[layer]
