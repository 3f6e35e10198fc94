"""``hpo train``: fit an exported configuration on every speaker and save it for ``hpo predict``.

The output directory holds ``hpo.json`` (kind, labels, the configuration, provenance) and
what the kind saves beside it (see each kind's ``train``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpo.config.paths import models_dir
from hpo.corpus.manifest import load_corpus
from hpo.errors import HpoError
from hpo.kinds import get_kind, kind_names
from hpo.results.export import load_export
from hpo.study.provenance import git_revision, package_versions
from hpo.util.io import atomic_dir

META = "hpo.json"


def train_from_export(
    config_path: Path, out: Path | None = None, data: Path | None = None, reporter=None
) -> Path:
    """Train the configuration in ``config_path`` on the whole corpus; return the model dir."""
    doc = load_export(config_path)
    cfg = doc["config"]
    if cfg["kind"] not in kind_names():
        raise HpoError(f"{config_path}: unknown kind {cfg['kind']!r}")
    kind = get_kind(cfg["kind"])
    corpus = load_corpus(data or cfg["data"]["corpus"])
    wanted = doc.get("labels")
    if wanted and list(wanted) != list(corpus.labels):
        # The searched configuration is for those classes; another label set is another task.
        raise HpoError(
            f"{config_path}: the study classified {', '.join(wanted)} but {corpus.root} has "
            f"{', '.join(corpus.labels)}; train on the study's corpus ({doc.get('corpus_name')})"
        )
    out = out or models_dir() / doc.get("study", cfg.get("name", cfg["kind"]))
    meta: dict[str, Any] = {
        "kind": cfg["kind"],
        "labels": list(corpus.labels),
        "config": cfg,
        "trained_on": {
            "corpus": str(corpus.root),
            "name": corpus.name,
            "clips": len(corpus.clips),
            "manifest_hash": corpus.manifest_hash,
            "synthetic": corpus.synthetic,
        },
        "from_export": {
            "path": str(config_path),
            "study": doc.get("study"),
            "trial": doc.get("trial"),
            "cv_value": doc.get("value"),
            "metric": doc.get("metric"),
        },
        "versions": package_versions(kind.versions),
        "git_revision": git_revision(),
    }
    # A crash mid-training leaves the previous model in place.
    with atomic_dir(out, replace=True) as tmp:
        meta.update(kind.train(cfg, corpus, tmp, reporter))
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    return out
