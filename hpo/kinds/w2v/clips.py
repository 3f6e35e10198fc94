"""The corpus's clips as a checkpoint expects them: cut, normalised, keyed for the caches."""

from __future__ import annotations

import json

import numpy as np

from hpo.corpus.audio import TARGET_SR, load_clip
from hpo.corpus.manifest import Corpus


def max_samples(max_seconds: float) -> int:
    return int(max_seconds * TARGET_SR)


def load_waves(corpus: Corpus, model_name: str, n_max: int) -> tuple[list[np.ndarray], str]:
    """Every clip, cut to ``n_max`` samples and normalised as the checkpoint expects, and a
    description of that preprocessing for the cache keys."""
    from hpo.kinds.w2v.backbone import load_feature_extractor, preprocess

    fe = load_feature_extractor(model_name)
    waves = [preprocess(fe, load_clip(str(corpus.clip_path(c))), n_max) for c in corpus.clips]
    return waves, preprocessing_key(model_name, n_max, fe)


def preprocessing_key(model_name: str, n_max: int, fe=None) -> str:
    """How clips are cut and normalised for ``model_name``: part of every cache key."""
    from hpo.kinds.w2v.backbone import load_feature_extractor

    fe = fe or load_feature_extractor(model_name)
    return json.dumps([n_max, fe.sampling_rate, fe.do_normalize])
