"""Per-speaker normalisation of frames as an affine map per clip (``[model] speaker_norm``).

Both w2v paths normalise frames, not pooled vectors: the probe each cached layer's frames,
fine-tuning the frozen CNN's output frames. A clip's frames are z-scored per dimension with
the mean and std over *every frame* of its statistics clips (``hpo.kinds.speaker_norm``
groups: never the scored clip for enrolment), which depend only on each clip's frame count,
frame mean and frame mean square. So the statistics come from per-clip moments, never from
the frames themselves, and the map is one (shift, factor) per clip and dimension, applied
wherever that clip's frames are read.
"""

from __future__ import annotations

import numpy as np

from hpo.kinds.speaker_norm import CONSTANT_RTOL, Groups

Moments = tuple[np.ndarray, np.ndarray, np.ndarray]  # per clip: frame mean, mean square, count


def frame_affine(
    means: np.ndarray,
    squares: np.ndarray,
    lengths: np.ndarray,
    groups: Groups,
    scale: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per clip the (shift, factor) that z-score its frames, ``(x - shift) * factor``, with
    the mean and std over every frame of its group's statistics clips, from the clips'
    frame ``means`` and mean ``squares`` (N, ...) and frame counts ``lengths`` (N,). A
    dimension constant over those frames gets factor 0 (the SVM's rule: constant -> 0);
    ``scale=False`` (neutral enrolment, ``SpeakerNorm.scales``): factor 1, centred only.
    Clips in no group keep (0, 1). Two float32 arrays shaped like ``means``."""
    means = np.asarray(means, dtype=np.float64)
    squares = np.asarray(squares, dtype=np.float64)
    frames = np.asarray(lengths, dtype=np.float64)
    shift = np.zeros(means.shape, np.float32)
    factor = np.ones(means.shape, np.float32)
    for scored, stats in groups:
        w = frames[stats] / frames[stats].sum()
        mu = np.tensordot(w, means[stats], axes=1)
        var = np.tensordot(w, squares[stats], axes=1) - mu**2
        spread = np.sqrt(np.maximum(var, 0.0))
        shift[scored] = mu
        if scale:
            varies = (spread > 0) & (spread > CONSTANT_RTOL * np.abs(mu))
            factor[scored] = np.where(varies, 1 / np.where(varies, spread, 1.0), 0.0)
    return shift, factor


def clip_moments(frames: list[np.ndarray]) -> Moments:
    """The moments ``frame_affine`` reads, of each clip's frames (T_i, C), in float64."""
    means = np.stack([f.astype(np.float64).mean(0) for f in frames])
    squares = np.stack([(f.astype(np.float64) ** 2).mean(0) for f in frames])
    return means, squares, np.array([len(f) for f in frames], dtype=np.int64)
