"""``hpo train``: fit an exported configuration on every actor and save it for ``hpo predict``.

Output directory: ``hpo.json`` (kind, labels, provenance) plus, for ``svm``, ``model.joblib``
(scaler + SVC with probabilities); for ``w2v``, the ``save_pretrained`` model, its feature
extractor config and the label map in ``config.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hpo.corpus.manifest import load_corpus
from hpo.corpus.ravdess import EMOTIONS
from hpo.errors import HpoError
from hpo.export import load_export
from hpo.io import atomic_dir
from hpo.provenance import git_revision, package_versions

META = "hpo.json"


def train_from_export(
    config_path: Path, out: Path | None = None, data: Path | None = None, reporter=None
) -> Path:
    """Train the configuration in ``config_path`` on the whole corpus; return the model dir."""
    doc = load_export(config_path)
    cfg = doc["config"]
    corpus = load_corpus(data or cfg["data"]["corpus"])
    out = out or Path("models") / doc.get("study", cfg.get("name", cfg["kind"]))
    meta: dict[str, Any] = {
        "kind": cfg["kind"],
        "labels": list(EMOTIONS),
        "config": cfg,
        "trained_on": {
            "corpus": str(corpus.root),
            "clips": len(corpus.clips),
            "manifest_hash": corpus.manifest_hash,
            "synthetic": corpus.synthetic,
        },
        "from_export": {
            "path": str(config_path),
            "study": doc.get("study"),
            "cv_value": doc.get("value"),
            "metric": doc.get("metric"),
        },
        "versions": package_versions(),
        "git_revision": git_revision(),
    }
    # A crash mid-training leaves the previous model in place.
    with atomic_dir(out, replace=True) as tmp:
        if cfg["kind"] == "svm":
            _train_svm(cfg, corpus, tmp)
        elif cfg["kind"] == "w2v":
            meta["random_init_model"] = _train_w2v(cfg, corpus, tmp, reporter)
        else:
            raise HpoError(f"{config_path}: unknown kind {cfg['kind']!r}")
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _train_svm(cfg: dict, corpus, out: Path) -> None:
    import joblib

    from hpo.svm.config import FeatureSettings
    from hpo.svm.features import corpus_features
    from hpo.svm.model import make_pipeline

    X = corpus_features(corpus, FeatureSettings(**cfg["features"]))
    y = np.array([c.emotion_id - 1 for c in corpus.clips])
    pipe = make_pipeline(cfg["svm"], probability=True).fit(X, y)
    joblib.dump(pipe, out / "model.joblib")


def _train_w2v(cfg: dict, corpus, out: Path, reporter) -> bool:
    import torch
    from transformers import set_seed

    from hpo.corpus.audio import TARGET_SR
    from hpo.w2v.cache import load_or_build
    from hpo.w2v.data import ClipDataset
    from hpo.w2v.model import load_classifier, load_feature_extractor, resolve_model_name
    from hpo.w2v.objective import load_waves, quiet_transformers
    from hpo.w2v.train import train_fold

    quiet_transformers()
    m, t = cfg["model"], cfg["training"]
    _, random_init = resolve_model_name(m["name"])
    max_samples = int(t["max_seconds"] * TARGET_SR)
    waves, preprocessing = load_waves(corpus, m["name"], max_samples)
    labels = np.array([c.emotion_id - 1 for c in corpus.clips])
    set_seed(t["seed"])
    model = load_classifier(m["name"], m["pooling"], m["dropout"], m["mask_time_prob"])
    cache = None
    if t["feature_cache"]:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        cache = load_or_build(model.to(device), waves, corpus, preprocessing, device)
    train_ds = ClipDataset(range(len(waves)), labels, waves, max_samples, cache)
    train_fold(
        model,
        {**t, "eval_every_epoch": False},
        train_ds,
        None,
        Path(t["tensorboard_dir"]) / "train" / out.name,
        reporter=reporter,
    )
    model.config.hpo_random_init = random_init
    model.config.hpo_max_seconds = t["max_seconds"]
    model.save_pretrained(out)
    load_feature_extractor(m["name"]).save_pretrained(out)
    return random_init
