"""A fold's examples for the Trainer: clip indices with their labels and lengths.

The examples are a ``datasets.Dataset`` with a ``length`` column, so the Trainer's own
``train_sampling_strategy="group_by_length"`` puts clips of similar length in one batch
(less padding) without reading a clip. The collator turns indices into what the model
takes: clip ids into the CNN cache, or padded waveforms when there is no cache, and with
per-speaker normalisation each clip's affine map of its CNN frames (``speaker.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def fold_examples(indices: Sequence[int], labels: np.ndarray, lengths: np.ndarray):
    """The clips ``indices`` as a ``datasets.Dataset`` (columns clip, labels, length)."""
    import datasets

    idx = np.asarray(indices, dtype=np.int64)
    return datasets.Dataset.from_dict(
        {"clip": idx, "labels": labels[idx].astype(np.int64), "length": lengths[idx]}
    )


class Collator:
    """Examples → a batch for ``EmotionClassifier.forward``."""

    def __init__(
        self,
        waves: list[np.ndarray] | None,
        affine: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.waves = waves  # None: the model gathers cached CNN frames by clip id
        # Per clip (shift, factor) of its CNN frames (N, C), or None: not normalised.
        self.affine = affine

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        labels = torch.tensor([it["labels"] for it in items])
        clips = [int(it["clip"]) for it in items]
        batch: dict[str, torch.Tensor] = {"labels": labels}
        if self.affine is not None:
            shift, factor = self.affine
            batch["frame_shift"] = torch.from_numpy(shift[clips])
            batch["frame_scale"] = torch.from_numpy(factor[clips])
        if self.waves is None:
            return {"clip_ids": torch.tensor(clips), **batch}
        seqs = [torch.from_numpy(self.waves[i]) for i in clips]
        return {
            "input_values": torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True),
            "lengths": torch.tensor([s.shape[0] for s in seqs]),
            **batch,
        }
