"""Frames per clip in one array, and that array on the training device.

Both caches hold variable-length frame sequences, one clip after another, with offsets: the
CNN cache (fine-tuning) and one layer of the layer cache (the probe's attention pooling).
``FrameBank`` turns a batch of clip ids into a padded batch with one gather.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


class FeatureCache:
    """Frames of every clip of a corpus, in manifest order (``frames`` memory-mapped)."""

    def __init__(self, frames: np.ndarray, offsets: np.ndarray) -> None:
        self.frames = frames
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes)

    def get(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over a (read-only) memory map, without copying it into this process."""
    with warnings.catch_warnings():
        # Never written through: workers share the map through the page cache.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


class FrameBank:
    """The whole cache as one tensor on ``device``; a batch is one gather.

    Nothing runs per clip on the hot path: the data loader hands over clip ids, and the
    padded (B, T, C) batch is built where the bank lives by indexing with a (B, T) matrix.
    On the CPU the bank is the memory map itself: K workers share one copy in RAM.
    """

    def __init__(self, cache: FeatureCache, device: torch.device) -> None:
        self.frames = as_tensor(cache.frames).to(device)
        offsets = torch.from_numpy(np.asarray(cache.offsets, dtype=np.int64))
        self.starts = offsets[:-1].to(device)
        self.lengths = (offsets[1:] - offsets[:-1]).to(device)

    @property
    def device(self) -> torch.device:
        return self.frames.device

    def batch(self, clip_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clip_ids = clip_ids.to(self.starts.device, non_blocking=True)
        lengths = self.lengths[clip_ids]
        t = torch.arange(int(lengths.max()), device=lengths.device)
        valid = t[None, :] < lengths[:, None]
        idx = self.starts[clip_ids][:, None] + torch.minimum(t[None, :], lengths[:, None] - 1)
        return self.frames[idx] * valid[..., None].to(self.frames.dtype), lengths
