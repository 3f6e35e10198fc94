"""The probe's head and what it reads.

The head is the fine-tuning classifier's own head (``heads.py``: the same modules under the
same names), fed from the layer cache instead of a live backbone. A parameter-free pooling
of one frozen layer is a per-clip statistic (``mean``: the layer's mean; ``max``;
``stats``), and so is the mean of the learned layer mix (the mix of the layers' means), so
an epoch is a few matrix products; ``attention``, and max / stats / attention of the mix,
gather frames. Standardising frames is an affine map per dimension, so it carries over to
those statistics exactly (see ``ProbeHead._from_statistics``). Everything the head reads
lives on the training device.

Per-speaker normalisation (``[model] speaker_norm``, ``hpo.kinds.speaker_norm``) is an
affine map per clip and dimension as well (each layer's frames z-scored with the mean and
std over every frame of the clip's statistics clips, computed from the cached per-clip
moments), so ``ProbeInputs`` applies it to the statistics, the frames and the moments the
fold's standardisation is fitted from alike: the head sees per-speaker normalised frames.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from hpo.kinds.speaker_norm import Groups
from hpo.kinds.w2v.config import WEIGHTED
from hpo.kinds.w2v.frame_norm import frame_affine
from hpo.kinds.w2v.heads import build_head, head_logits, pool_states, resolve
from hpo.kinds.w2v.pooling import STATS_EPS
from hpo.kinds.w2v.probe.layers import LayerCache


def speaker_affine(
    cache: LayerCache, groups: Groups, scale: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per clip, layer and dimension the (shift, factor) that z-score a clip's frames with
    the mean and std over every frame of its group's statistics clips (``groups``; never
    the scored clip for enrolment), from the cached per-clip means and mean squares
    (``frame_norm.frame_affine``). Two (N, L+1, H) float32."""
    return frame_affine(cache.means, cache.sq_means, cache.lengths, groups, scale)


def reads_statistics(layer: int | str, pooling: str) -> bool:
    """Whether the head reads per-clip statistics (else frames) for this layer and pooling."""
    return pooling in ("mean", "max", "stats") and (layer != WEIGHTED or pooling == "mean")


class ProbeInputs:
    """What the head of a given layer and pooling reads, for every clip, from the cache."""

    def __init__(
        self,
        cache: LayerCache,
        pooling: str,
        layer: int | str,
        device: torch.device | str = "cpu",
        log: Callable[[str], None] | None = None,
        groups: Groups | None = None,
        scale: bool = True,
    ) -> None:
        """``groups``: per-speaker normalisation (which clips' statistics normalise which
        clips; None: none); ``scale=False``: centred only (``SpeakerNorm.scales``)."""
        from hpo.kinds.w2v.bank import FeatureCache, FrameBank
        from hpo.kinds.w2v.device import place_cache

        self.layer, self.pooling = resolve(pooling, layer, cache.n_layers)
        means_np, squares = cache.means, cache.sq_means
        self.shift: torch.Tensor | None = None
        self.factor: torch.Tensor | None = None
        if groups is not None:
            shift, factor = speaker_affine(cache, groups, scale)
            # The clips' moments after the affine map: what every fold then standardises.
            squares = factor**2 * (squares - 2 * shift * means_np + shift**2)
            means_np = (means_np - shift) * factor
        # The frame moments standardisation is fitted from (per clip, every layer).
        self.moments = (means_np, squares, cache.lengths)
        device = torch.device(device)
        means = torch.from_numpy(np.ascontiguousarray(means_np, dtype=np.float32))
        self.x: torch.Tensor | None = None
        self.banks: list = []
        if reads_statistics(self.layer, self.pooling):
            if self.layer == WEIGHTED:
                self.x = means  # (N, L+1, H)
            elif self.pooling == "mean":
                self.x = means[:, self.layer]
            else:
                mx, sd = cache.clip_stats(self.layer)
                if groups is not None:  # max and std of the affinely mapped frames
                    a, f = shift[:, self.layer], factor[:, self.layer]
                    mx = (mx - a) * f
                    sd = np.sqrt(np.maximum(sd**2 - STATS_EPS, 0) * f**2 + STATS_EPS)
                mx_t, sd_t = (
                    torch.from_numpy(mx.astype(np.float32)),
                    torch.from_numpy(sd.astype(np.float32)),
                )
                self.x = (
                    mx_t if self.pooling == "max" else torch.cat([means[:, self.layer], sd_t], -1)
                )
            self.x = self.x.contiguous().to(device)
        else:  # frames (half precision, as cached), a batch one gather per layer read
            layers = range(cache.n_layers) if self.layer == WEIGHTED else [self.layer]
            per_layer = [FeatureCache(cache.layer(k), cache.offsets) for k in layers]
            nbytes = sum(f.nbytes for f in per_layer)
            self.banks = place_cache(
                nbytes, device, lambda d: [FrameBank(f, d) for f in per_layer], log
            )
            if groups is not None:  # (N, layers read, H): applied to each batch's frames
                keep = list(layers)
                self.shift = torch.from_numpy(shift[:, keep]).to(device)
                self.factor = torch.from_numpy(factor[:, keep]).to(device)
        self.device = device

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's input for clips ``idx`` (a tensor of indices) and the frame mask:
        per-clip statistics and None, or frames (B, T, H) or (L+1, B, T, H) and their mask."""
        if self.x is not None:
            return self.x[idx.to(self.x.device)], None
        batches = [bank.batch(idx) for bank in self.banks]
        lengths = batches[0][1].to(self.device)
        feats = [b[0].to(self.device).float() for b in batches]
        if self.shift is not None and self.factor is not None:
            i = idx.to(self.device)
            feats = [
                (f - self.shift[i, k, None]) * self.factor[i, k, None] for k, f in enumerate(feats)
            ]
        x = torch.stack(feats) if self.layer == WEIGHTED else feats[0]
        mask = torch.arange(x.shape[-2], device=self.device)[None] < lengths[:, None]
        return x, mask


class ProbeHead(nn.Module):
    """The classifier's head (``heads.build_head``) on what ``ProbeInputs`` reads."""

    def __init__(
        self,
        pooling: str,
        hidden: int,
        n_states: int,
        dropout: float,
        n_labels: int,
        layer: int | str = -1,
        head: str = "linear",
        standardize: bool = False,
    ) -> None:
        super().__init__()
        build_head(
            self,
            pooling=pooling,
            layer=layer,
            head=head,
            hidden=hidden,
            n_states=n_states,
            dropout=dropout,
            n_labels=n_labels,
            standardize=standardize,
        )

    def fit_scaler(self, moments: tuple[np.ndarray, np.ndarray, np.ndarray], idx) -> None:
        """Standardisation from the frames of clips ``idx`` only (a fold's training clips)."""
        if self.scaler is not None:
            self.scaler.fit(*moments, np.asarray(idx))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        pooled = self._from_statistics(x) if mask is None else pool_states(self, x, mask)
        return head_logits(self, pooled)

    def _from_statistics(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled vector from per-clip statistics of raw frames: what pooling the
        standardised (and mixed) frames would give."""
        x = x.float()
        s = self.scaler
        if self.layer == WEIGHTED:  # (B, L+1, H) layer means; the mix of means
            x = x.transpose(0, 1)
            return self.layer_mix(x if s is None else s(x, None))
        if s is None:
            return x
        if self.pooling != "stats":  # mean and max commute with x -> (x - m) / s, s > 0
            return s(x, self.layer)
        h = x.shape[-1] // 2
        mean, sd = x[:, :h], x[:, h:]
        # The std of standardised frames: sqrt(var / s^2 + eps), var = sd^2 - eps (as cached).
        var = (sd**2 - STATS_EPS).clamp(min=0) / s.std[self.layer] ** 2
        return torch.cat([s(mean, self.layer), (var + STATS_EPS).sqrt()], -1)
