"""Training examples for the Trainer: raw waveforms or cached CNN features, with lengths so
the Trainer's length-grouped sampler puts clips of similar length in one batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hpo.kinds.w2v.cache import FeatureCache


class ClipDataset(torch.utils.data.Dataset):
    """Items are dicts the model's forward takes (before padding)."""

    def __init__(
        self,
        indices: Sequence[int],
        labels: np.ndarray,
        waves: list[np.ndarray],
        max_samples: int,
        cache: FeatureCache | None,
    ) -> None:
        self.indices = list(indices)
        self.labels = labels
        self.waves = waves
        self.max_samples = max_samples
        self.cache = cache

    def __len__(self) -> int:
        return len(self.indices)

    def lengths(self) -> list[int]:
        if self.cache is not None:
            return [self.cache.length(i) for i in self.indices]
        return [min(len(self.waves[i]), self.max_samples) for i in self.indices]

    def __getitem__(self, k: int) -> dict:
        i = self.indices[k]
        item = {"labels": int(self.labels[i])}
        if self.cache is not None:
            item["clip_ids"] = i  # the model gathers its frames from the frame bank
        else:
            item["input_values"] = torch.from_numpy(self.waves[i][: self.max_samples])
        return item


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad to the longest item; lengths say where each item's real content ends."""
    labels = torch.tensor([it["labels"] for it in items])
    if "clip_ids" in items[0]:
        return {"clip_ids": torch.tensor([it["clip_ids"] for it in items]), "labels": labels}
    key = "extract_features" if "extract_features" in items[0] else "input_values"
    seqs = [it[key] for it in items]
    padded = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    lengths = torch.tensor([s.shape[0] for s in seqs])
    if key == "extract_features":
        return {"extract_features": padded, "frame_lengths": lengths, "labels": labels}
    return {"input_values": padded, "lengths": lengths, "labels": labels}
