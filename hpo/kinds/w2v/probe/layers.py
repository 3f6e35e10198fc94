"""The layer cache of a frozen backbone: every layer's frame outputs, computed once per clip.

For ``[model] finetune = false`` studies (the SUPERB / EmoBox protocol: frozen upstream,
trained head). The backbone runs once per clip in eval mode (batched, on the GPU when there
is one) and all L+1 states are stored under the corpus, layer-major, in half precision, as
a memory-mapped array: ``states.npy`` (L+1, frames, H). A trial reads only this cache.

Poolings without parameters are functions of per-clip statistics, stored beside it
(``means.npy``: every layer's per-clip mean, what ``mean`` and the layer mix pool;
``sq_means.npy``: the per-clip mean of squares, from which a fold's standardisation
statistics are summed), and the per-layer max/std the probe needs are computed from the
memory map once per layer. A cache written before ``sq_means.npy`` existed gets it added
(one pass over the memory map) instead of being rebuilt.
Keyed like the CNN cache (model weights, preprocessing, corpus manifest).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hpo.corpus.manifest import Corpus
from hpo.kinds.w2v.pooling import STATS_EPS
from hpo.util.io import atomic_dir, atomic_path
from hpo.util.progress import progress_bar

LAYER_CACHE_VERSION = 1


def layer_key(model, preprocessing: str, corpus: Corpus) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.backbone.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().float().numpy().tobytes())
    h.update(json.dumps([LAYER_CACHE_VERSION, preprocessing, corpus.manifest_hash]).encode())
    return h.hexdigest()[:16]


@dataclass
class LayerCache:
    """All layers' frames (memory-mapped) and per-clip statistics of a corpus."""

    root: Path
    states: np.ndarray  # (L+1, frames, H) float16, memory-mapped
    offsets: np.ndarray  # (clips+1,)
    means: np.ndarray  # (clips, L+1, H) float32
    sq_means: np.ndarray  # (clips, L+1, H) float32: the mean of squared frames
    build_seconds: float | None = None

    @property
    def lengths(self) -> np.ndarray:
        """Frames per clip."""
        return np.diff(self.offsets)

    @property
    def n_layers(self) -> int:
        return self.states.shape[0]

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.iterdir() if p.is_file())

    def layer(self, layer: int) -> np.ndarray:
        return self.states[layer % self.n_layers]

    def clip_stats(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-clip (max, std) of one layer, in one pass over its frames."""
        frames = self.layer(layer)
        n = len(self.offsets) - 1
        mx = np.empty((n, frames.shape[1]), np.float32)
        sd = np.empty_like(mx)
        for i in range(n):
            f = np.asarray(frames[self.offsets[i] : self.offsets[i + 1]], dtype=np.float32)
            mx[i] = f.max(0)
            sd[i] = np.sqrt(f.var(0) + STATS_EPS)  # as StatsPooling
        return mx, sd


def _open(root: Path, n_clips: int) -> tuple[LayerCache | None, str | None]:
    """The cache in ``root``, or None and why it cannot be used (None: it is not there)."""
    if not root.exists():
        return None, None
    try:
        offsets = np.load(root / "offsets.npy")
        states = np.load(root / "states.npy", mmap_mode="r")
        means = np.load(root / "means.npy")
    except (OSError, ValueError) as e:
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__
    if len(offsets) != n_clips + 1 or states.shape[1] != offsets[-1] or len(means) != n_clips:
        return None, f"{len(offsets) - 1} clips, {states.shape[1]} frames, {len(means)} means"
    try:
        sq_means = np.load(root / "sq_means.npy")
    except FileNotFoundError:  # a cache an older hpo wrote: complete it once
        sq_means = _add_sq_means(root, states, offsets)
    except (OSError, ValueError) as e:
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__
    if sq_means.shape != means.shape:
        return None, f"{len(sq_means)} mean squares for {len(means)} means"
    return LayerCache(root, states, offsets, means, sq_means), None


def _add_sq_means(root: Path, states: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-clip mean squares of an existing cache's frames, written beside it (atomically:
    another worker may be reading the cache)."""
    n = len(offsets) - 1
    out = np.empty((n, states.shape[0], states.shape[2]), np.float32)
    for layer in range(states.shape[0]):  # layer-major: one sequential read per layer
        frames = states[layer]
        for i in range(n):
            f = np.asarray(frames[offsets[i] : offsets[i + 1]], dtype=np.float32)
            out[i, layer] = (f * f).mean(0)
    with atomic_path(root / "sq_means.npy", durable=False) as tmp, tmp.open("wb") as fh:
        np.save(fh, out)  # cheap to make again: no fsync
    return out


@torch.no_grad()
def load_or_build(
    model,
    waves,
    corpus: Corpus,
    preprocessing: str,
    device,
    log: Callable[[str], None] | None = None,
    batch_size: int = 8,
) -> LayerCache:
    """Open the layer cache of this backbone and corpus, computing it first if needed (a
    damaged one is rebuilt in its place, with a note through ``log``).

    ``waves``: the preprocessed clips, or a function returning them (called only to build).
    """
    root = corpus.root / "cache" / "layers" / layer_key(model, preprocessing, corpus)
    cache, damaged = _open(root, len(corpus.clips))
    if cache is not None:
        return cache
    if damaged and log:
        log(f"layer cache {root} is damaged ({damaged}); rebuilding it")
    if callable(waves):
        waves = waves()
    model.eval().to(device)
    t0 = time.perf_counter()
    n_states, hidden = model.config.num_hidden_layers + 1, model.config.hidden_size
    frames = model.frames_for_samples(torch.tensor([len(w) for w in waves])).numpy()
    offsets = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    means = np.zeros((len(waves), n_states, hidden), np.float32)
    sq_means = np.zeros_like(means)
    # replace: a damaged cache in the way is swapped out, not kept.
    with (
        atomic_dir(root, replace=True) as tmp,
        progress_bar("layer cache", total=len(waves)) as advance,
    ):
        # Written batch by batch into the memory map: the states never sit in RAM at once.
        out = np.lib.format.open_memmap(
            tmp / "states.npy", "w+", np.float16, (n_states, int(offsets[-1]), hidden)
        )
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(waves[i]) for i in idx], True)
            lengths = torch.tensor([len(waves[i]) for i in idx])
            feats, n_frames = model.cnn_batch(x.to(device), lengths.to(device))
            states, _ = model.encode(feats, n_frames, all_layers=True)  # (L+1, B, T, H)
            states = states.float().cpu().numpy()
            for j, i in enumerate(idx):
                clip = states[:, j, : int(n_frames[j])]
                means[i] = clip.mean(1)
                sq_means[i] = (clip * clip).mean(1)
                out[:, offsets[i] : offsets[i + 1]] = clip.astype(np.float16)
                advance()
        out.flush()
        del out
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "means.npy", means)
        np.save(tmp / "sq_means.npy", sq_means)
    cache, damaged = _open(root, len(waves))
    if cache is None:
        raise OSError(f"{root}: the layer cache just written cannot be read ({damaged})")
    cache.build_seconds = time.perf_counter() - t0
    return cache
