"""The frozen CNN's output per clip, computed once and reused across epochs, folds and trials.

Keyed by the CNN's weights (hash of its state dict), its config, the clip cutting length and
the corpus manifest, so a different model or corpus never reads another's features. Stored
as one float32 array of all frames plus per-clip offsets, written atomically; a damaged
cache (a truncated file, say) is rebuilt in its place with a one-line note.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator

import numpy as np
import torch

from hpo.corpus.manifest import Corpus
from hpo.kinds.w2v.bank import FeatureCache
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


def _open(root, n_clips: int) -> tuple[FeatureCache | None, str | None]:
    """The cache in ``root``, or None and why it cannot be used (None: it is not there)."""
    if not root.exists():
        return None, None
    try:
        offsets = np.load(root / "offsets.npy")
        frames = np.load(root / "frames.npy", mmap_mode="r")
    except (OSError, ValueError) as e:
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__
    if len(offsets) != n_clips + 1 or frames.shape[0] != offsets[-1]:
        return None, f"{len(offsets) - 1} clips and {frames.shape[0]} frames do not match"
    return FeatureCache(frames, offsets), None


def cnn_frames(
    model, waves: list[np.ndarray], device: torch.device, batch_size: int = 16
) -> Iterator[tuple[int, np.ndarray]]:
    """(clip index, its CNN frames (T, C) float32) for every clip, in batches of similar
    length: what the cache stores, and what the uncached path's statistics are taken from."""
    model.eval().to(device)
    # Clips of similar length share a batch: on a GPU the CNN runs batched (a group-norm
    # CNN still per clip inside cnn_batch, since padding would change its output).
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(waves[i]) for i in idx], True)
        lengths = torch.tensor([len(waves[i]) for i in idx])
        out, n_frames = model.cnn_batch(x.to(device, non_blocking=True), lengths.to(device))
        out = out.float().cpu().numpy()
        for j, i in enumerate(idx):
            yield i, out[j, : int(n_frames[j])]


def load_or_build(
    model,
    waves: list[np.ndarray],
    corpus: Corpus,
    preprocessing: str,
    device: torch.device,
    log: Callable[[str], None] | None = None,
    batch_size: int = 16,
) -> FeatureCache:
    """Open the cache for this model and corpus, computing it first if needed.

    ``waves`` are the preprocessed clips (cut and normalised); ``preprocessing`` describes
    how, and is part of the key.
    """
    root = corpus.root / "cache" / "w2v" / cnn_key(model, preprocessing, corpus)
    cache, damaged = _open(root, len(waves))
    if cache is not None:
        return cache
    if damaged and log:
        log(f"CNN cache {root} is damaged ({damaged}); rebuilding it")
    feats: list[np.ndarray] = [np.empty(0)] * len(waves)
    with progress_bar("CNN feature cache", total=len(waves)) as advance:
        for i, f in cnn_frames(model, waves, device, batch_size):
            feats[i] = f
            advance()
    offsets = np.concatenate([[0], np.cumsum([f.shape[0] for f in feats])]).astype(np.int64)
    # replace: a damaged cache in the way is swapped out, not kept.
    with atomic_dir(root, replace=True) as tmp:
        np.save(tmp / "frames.npy", np.concatenate(feats).astype(np.float32))
        np.save(tmp / "offsets.npy", offsets)
    cache, damaged = _open(root, len(waves))
    if cache is None:
        raise OSError(f"{root}: the CNN cache just written cannot be read ({damaged})")
    return cache
