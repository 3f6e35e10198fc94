"""The frozen CNN's output per clip, computed once and reused across epochs, folds and trials.

Keyed by the CNN's weights (hash of its state dict), its config, the clip cutting length and
the corpus manifest, so a different model or corpus never reads another's features. Stored
as one float32 array of all frames plus per-clip offsets, written atomically.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from hpo.corpus.manifest import Corpus
from hpo.util.io import atomic_dir
from hpo.util.progress import progress_bar

CACHE_VERSION = 2  # 2: keyed by backbone family too


def cnn_key(model, preprocessing: str, corpus: Corpus) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.backbone.feature_extractor.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().float().numpy().tobytes())
    cfg = model.config
    h.update(
        json.dumps(
            [
                CACHE_VERSION,
                list(cfg.conv_dim),
                list(cfg.conv_kernel),
                list(cfg.conv_stride),
                getattr(cfg, "feat_extract_norm", "layer"),
                cfg.model_type,
                preprocessing,
                corpus.manifest_hash,
            ]
        ).encode()
    )
    return h.hexdigest()[:16]


class FeatureCache:
    """Per-clip CNN features of a corpus, in manifest order."""

    def __init__(self, frames: np.ndarray, offsets: np.ndarray) -> None:
        self.frames = frames
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i] : self.offsets[i + 1]]

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])


def load_or_build(
    model,
    waves: list[np.ndarray],
    corpus: Corpus,
    preprocessing: str,
    device: torch.device,
    batch_size: int = 16,
) -> FeatureCache:
    """Open the cache for this model and corpus, computing it first if needed.

    ``waves`` are the preprocessed clips (cut and normalised); ``preprocessing`` describes
    how, and is part of the key.
    """
    root = corpus.root / "cache" / "w2v" / cnn_key(model, preprocessing, corpus)
    if (root / "offsets.npy").is_file():
        try:
            offsets = np.load(root / "offsets.npy")
            frames = np.load(root / "frames.npy", mmap_mode="r")
            if len(offsets) == len(waves) + 1 and frames.shape[0] == offsets[-1]:
                return FeatureCache(frames, offsets)
        except (OSError, ValueError):
            pass  # damaged: rebuilt below and replaced atomically
    feats: list[np.ndarray] = [np.empty(0)] * len(waves)
    model.eval()
    # Clips of similar length share a batch: on a GPU the CNN runs batched (a group-norm
    # CNN still per clip inside cnn_batch, since padding would change its output).
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    with progress_bar("CNN feature cache", total=len(waves)) as advance:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(waves[i]) for i in idx], True)
            lengths = torch.tensor([len(waves[i]) for i in idx])
            out, n_frames = model.cnn_batch(x.to(device, non_blocking=True), lengths.to(device))
            out = out.float().cpu().numpy()
            for j, i in enumerate(idx):
                feats[i] = out[j, : int(n_frames[j])]
                advance()
    offsets = np.concatenate([[0], np.cumsum([f.shape[0] for f in feats])]).astype(np.int64)
    with atomic_dir(root) as tmp:
        np.save(tmp / "frames.npy", np.concatenate(feats).astype(np.float32))
        np.save(tmp / "offsets.npy", offsets)
    return FeatureCache(np.load(root / "frames.npy", mmap_mode="r"), offsets)


class FrameBank:
    """The whole cache as one tensor on the training device; a batch is one gather.

    Nothing runs per clip on the hot path: the data loader hands over clip ids, and the
    padded (B, T, C) batch is built where the model runs, by indexing with a (B, T) matrix.
    """

    def __init__(self, cache: FeatureCache, device, dtype=None) -> None:
        frames = torch.from_numpy(np.ascontiguousarray(cache.frames))
        self.frames = frames.to(device=device, dtype=dtype or frames.dtype)
        offsets = torch.from_numpy(np.asarray(cache.offsets, dtype=np.int64))
        self.starts = offsets[:-1].to(device)
        self.lengths = (offsets[1:] - offsets[:-1]).to(device)

    def batch(self, clip_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clip_ids = clip_ids.to(self.starts.device, non_blocking=True)
        lengths = self.lengths[clip_ids]
        t = torch.arange(int(lengths.max()), device=lengths.device)
        valid = t[None, :] < lengths[:, None]
        idx = self.starts[clip_ids][:, None] + torch.minimum(t[None, :], lengths[:, None] - 1)
        return self.frames[idx] * valid[..., None].to(self.frames.dtype), lengths
