"""The classifier's head, shared by fine-tuning's ``EmotionClassifier`` and the probe's
``ProbeHead`` (the same modules under the same names, so a probe's head loads into a
classifier): which layer (one, or the learned mix of all), standardisation, pooling, then
the head proper.

Layer and pooling are two axes: ``probe_layer`` picks one state (0..L) or ``"weighted"``,
the learned softmax mix of all of them (SUPERB's featurizer); ``pooling`` (mean, max, stats,
attention) turns its frames into one vector. The head after pooling:

- ``linear``: dropout and one linear layer.
- ``superb``: SUPERB's emotion downstream (s3prl ``downstream/emotion``: ``projector_dim:
  256``, ``UtteranceLevel`` with ``MeanPooling``, a linear post-net): a linear projector to
  256 then the linear classifier. s3prl projects frames before pooling; with mean pooling
  that is the same function (the mean of a linear map is the map of the mean), and it lets
  the probe read per-clip means.
"""

from __future__ import annotations

import torch
from torch import nn

from hpo.kinds.w2v.config import LEGACY_POOLING, SUPERB_PROJECTOR, WEIGHTED
from hpo.kinds.w2v.pooling import LayerMix, make_pooling
from hpo.kinds.w2v.standardize import LayerScaler


def resolve(pooling: str, layer: int | str, n_states: int) -> tuple[int | str, str]:
    """(layer, pooling) with the older ``layer_weighted`` pooling read as the mean of the
    layer mix, and a layer index made non-negative."""
    if pooling == LEGACY_POOLING:
        return WEIGHTED, "mean"
    return (layer if layer == WEIGHTED else int(layer) % n_states), pooling


def build_head(
    module: nn.Module,
    *,
    pooling: str,
    layer: int | str,
    head: str,
    hidden: int,
    n_states: int,
    dropout: float,
    n_labels: int,
    standardize: bool,
) -> None:
    """Give ``module`` the head's parts (seed the RNG first for a reproducible head). The
    order keeps an older head's initialisation: the pooler, then the classifier."""
    module.layer, module.pooling = resolve(pooling, layer, n_states)
    module.head = head
    module.standardize = standardize
    module.layer_mix = LayerMix(n_states) if module.layer == WEIGHTED else None
    module.scaler = LayerScaler(n_states, hidden) if standardize else None
    module.pooler, width = make_pooling(module.pooling, hidden)
    module.projector = None
    if head == "superb":
        module.projector = nn.Linear(width, SUPERB_PROJECTOR)
        width = SUPERB_PROJECTOR
    elif head != "linear":
        raise ValueError(f"unknown head {head!r}")
    module.dropout = nn.Dropout(dropout)
    module.classifier = nn.Linear(width, n_labels)


def pool_states(module: nn.Module, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Frames of the chosen layer (B, T, H), or of every layer (L+1, B, T, H) for the mix,
    standardised, mixed and pooled."""
    weighted = module.layer_mix is not None
    if module.scaler is not None:
        states = module.scaler(states, None if weighted else module.layer)
    if weighted:
        states = module.layer_mix(states)
    return module.pooler(states, mask)


def head_logits(module: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """The head proper on pooled features; float32 logits whatever the autocast precision."""
    if module.projector is not None:
        pooled = module.projector(pooled)
    return module.classifier(module.dropout(pooled)).float()


def head_config(module: nn.Module) -> dict:
    """What ``head.json`` records to rebuild the head."""
    return {
        "pooling": module.pooling,
        "layer": module.layer,
        "head": module.head,
        "standardize": module.standardize,
    }
