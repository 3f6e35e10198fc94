"""``hpo train`` for fine-tuning: the exported configuration fine-tuned on every clip,
saved as an ``EmotionClassifier`` (backbone with ``save_pretrained``, head beside it).

With ``[model] speaker_norm`` it trains on every clip's CNN frames normalised by the
study's rule (``speaker.py``); the saved model is the plain classifier, and ``hpo predict``
computes the statistics the same way from the CNN frames of the clips it is given
(``speaker.predict_normalised``), the mode read from the saved config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hpo.kinds.speaker_norm import SpeakerNorm


def train_and_save(cfg: dict[str, Any], corpus, out: Path, reporter) -> None:
    from hpo.kinds.w2v.backbone import BackboneStore
    from hpo.kinds.w2v.bank import FrameBank
    from hpo.kinds.w2v.clips import load_waves, max_samples
    from hpo.kinds.w2v.device import autocast_dtype, place_cache, training_device
    from hpo.kinds.w2v.finetune.cache import load_or_build
    from hpo.kinds.w2v.finetune.data import fold_examples
    from hpo.kinds.w2v.finetune.train import train_fold
    from hpo.kinds.w2v.monitor import final_fit
    from hpo.kinds.w2v.saved import save_classifier

    m, t = cfg["model"], cfg["training"]
    device = training_device()
    log = reporter.log if reporter else None
    waves, prep = load_waves(corpus, m["name"], max_samples(t["max_seconds"]))
    model = BackboneStore(m["name"], m["mask_time_prob"], device).classifier(
        m, t["seed"], len(corpus.labels)
    )
    lengths = np.array([len(w) for w in waves])
    cache = None
    if t["feature_cache"]:
        cache = load_or_build(model, waves, corpus, prep, device, log)
        model.bank = place_cache(cache.nbytes, device, lambda d: FrameBank(cache, d), log)
        lengths = cache.lengths()
    norm = SpeakerNorm.of(m)  # an export older than speaker_norm: off
    affine = None
    if norm.on:
        from hpo.kinds.w2v.finetune.speaker import cache_moments, cnn_moments, corpus_affine

        moments = cache_moments(cache) if cache is not None else cnn_moments(model, waves, device)
        affine = corpus_affine(norm, corpus, moments)
    plan, monitor = final_fit(len(waves), t, out, reporter)
    with monitor:
        train_fold(
            model,
            {**t, "eval_every_epoch": False},
            fold_examples(range(len(waves)), corpus.label_ids, lengths),
            None,
            monitor,
            plan,
            dtype=autocast_dtype(t["mixed_precision"], device),
            waves=waves,
            affine=affine,
        )
    model.bank = None
    save_classifier(model.cpu(), m["name"], corpus, t, out)
