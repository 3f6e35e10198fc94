"""Per-speaker normalisation for fine-tuning (``[model] speaker_norm``): of the frozen CNN's
output frames, before the feature projection.

Why there: the CNN feature encoder is frozen, so its output (``extract_features``, 512
dimensions for wav2vec2-base) is a pure function of the clip; it is cached per corpus
(``cache.py``), so its per-clip moments, and from them every speaker's statistics under
any mode, cost one pass over the corpus, once, and never change between epochs, folds or
trials. Any layer above it is trained, so statistics of its output would move with every
update and would have to be recomputed from the enrolment clips at each step (and be
different for the model saved than for the one scored). And it is still a per-frame input
to everything trained, as the probe's per-speaker map is for its head: the same affine map
per clip (``frame_norm.frame_affine``), from the same groups (``hpo.kinds.speaker_norm``:
transductive all of the speaker's clips, enrolment k other clips or the other neutral ones,
never the scored clip), here applied to the CNN frames in the model's ``input_frames``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hpo.kinds.speaker_norm import Groups, SpeakerNorm, corpus_groups, scored_clips
from hpo.kinds.w2v.frame_norm import Moments, clip_moments, frame_affine

if TYPE_CHECKING:
    from hpo.kinds.w2v.bank import FeatureCache


def cache_moments(cache: FeatureCache) -> Moments:
    """Each clip's CNN frame moments, from the CNN cache."""
    return clip_moments([cache.get(i) for i in range(len(cache))])


def cnn_moments(model, waves: list[np.ndarray], device) -> Moments:
    """Each clip's CNN frame moments without a cache: the CNN run once over every clip
    (the frames the cache would hold; only their moments are kept). In float32, as the
    cache: under a bf16/fp16 trial the uncached CNN's frames differ from these by rounding,
    which the statistics of hundreds of frames do not notice."""
    from hpo.kinds.w2v.finetune.cache import cnn_frames

    means, squares, lengths = [], [], np.zeros(len(waves), np.int64)
    order: list[int] = []
    for i, f in cnn_frames(model, waves, device):
        m, s, n = clip_moments([f])
        means.append(m[0])
        squares.append(s[0])
        lengths[i] = n[0]
        order.append(i)
    at = np.argsort(order)
    return np.stack(means)[at], np.stack(squares)[at], lengths


def corpus_affine(norm: SpeakerNorm, corpus, moments: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Every clip's (shift, factor) of its CNN frames (N, C) under ``norm``'s rule."""
    return frame_affine(*moments, corpus_groups(norm, corpus), norm.scales)


def predict_normalised(
    model_dir: Path, waves: list[np.ndarray], groups: Groups, norm: SpeakerNorm
) -> np.ndarray:
    """Class probabilities of the scored clips of ``groups`` (index order): the saved
    fine-tuned model on ``waves``, each scored clip's CNN frames normalised per speaker
    (``norm``) by the CNN frames of its group's statistics clips, as in training."""
    import torch

    from hpo.kinds.w2v.finetune.cache import cnn_frames
    from hpo.kinds.w2v.saved import load_for_prediction

    model, _, cut = load_for_prediction(model_dir, waves)
    frames: list[np.ndarray] = [np.empty(0)] * len(cut)
    with torch.no_grad():
        for i, f in cnn_frames(model, cut, torch.device("cpu")):
            frames[i] = f
    shift, factor = frame_affine(*clip_moments(frames), groups, norm.scales)
    out = []
    with torch.no_grad():
        for i in scored_clips(groups):
            logits = model(
                extract_features=torch.from_numpy(frames[i])[None],
                frame_lengths=torch.tensor([len(frames[i])]),
                frame_shift=torch.from_numpy(shift[i : i + 1]),
                frame_scale=torch.from_numpy(factor[i : i + 1]),
            ).logits
            out.append(torch.softmax(logits.float(), -1)[0].numpy())
    return np.stack(out)
