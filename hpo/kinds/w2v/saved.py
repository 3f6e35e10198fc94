"""A trained classifier on disk, whichever path trained it: the backbone in its family's
own format (``save_pretrained``) with its preprocessing config, the head beside it
(``model.EmotionClassifier.save``). ``hpo predict`` loads both the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def save_classifier(
    model, name: str, corpus, t: dict[str, Any], out: Path, probe: bool = False
) -> None:
    """Save ``model`` (on the CPU) with the corpus's labels and how clips were cut."""
    from hpo.kinds.w2v.backbone import load_feature_extractor

    extra = {"max_seconds": t["max_seconds"], "labels": list(corpus.labels)}
    model.save(out, {**extra, "probe": True} if probe else extra)
    load_feature_extractor(name).save_pretrained(out)


def load_for_prediction(model_dir: Path, waves: list[np.ndarray]) -> tuple[Any, dict, list]:
    """The saved classifier (in eval mode), its head's metadata, and ``waves`` preprocessed
    as it was trained on them (its own feature extractor, cut to its ``max_seconds``): what
    every prediction path starts from."""
    from transformers import Wav2Vec2FeatureExtractor

    from hpo.kinds.w2v.backbone import preprocess, quiet_transformers
    from hpo.kinds.w2v.clips import max_samples
    from hpo.kinds.w2v.model import load_saved

    quiet_transformers()
    model, head = load_saved(model_dir)
    model.eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    n_max = max_samples(head.get("max_seconds", 6.0))
    return model, head, [preprocess(fe, w, n_max) for w in waves]


def predict_proba(model_dir: Path, meta: dict[str, Any], waves: list[np.ndarray]) -> np.ndarray:
    import torch

    model, _, cut = load_for_prediction(model_dir, waves)
    out = []
    with torch.no_grad():
        for c in cut:
            x = torch.from_numpy(c)[None]
            logits = model(input_values=x, lengths=torch.tensor([x.shape[1]])).logits
            out.append(torch.softmax(logits.float(), -1)[0].numpy())
    return np.stack(out)
