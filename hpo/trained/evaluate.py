"""``hpo evaluate``: a model made by ``hpo train`` scored on another prepared corpus, on the
labels the two share (cross-corpus evaluation).

Every corpus's labels are named in one vocabulary (``hpo.corpus.formats``), so labels are
shared by name. A label only one side has is listed, never merged into another: the
corpus's clips of a label the model does not know are left out and counted; a label only
the model knows stays one of its possible answers.

Headline: the model's own decision over all its labels (``Kind.classify``: what its
cross-validation scored), so a clip the model calls by a label the corpus lacks (RAVDESS's
calm on EmoDB) counts as wrong. Beside it, "restricted": the most probable of the shared
labels by the model's probabilities (an SVM's are Platt-calibrated apart from its decision),
the score of a model that knew only the shared labels.

Each speaker's clips are classified together, so a model that normalises features per
speaker is normalised over each evaluated speaker's own clips by the rule it was
cross-validated with (``hpo.kinds.speaker_norm``: all of them for ``transductive``, of
shared labels or not; leave-one-out enrolment statistics for ``enrolment``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpo.corpus.audio import load_clip
from hpo.corpus.manifest import Corpus, load_corpus
from hpo.errors import HpoError
from hpo.kinds import get_kind
from hpo.kinds.speaker_norm import MIN_GIVEN_CLIPS, stats_groups
from hpo.results.tables import FORMATS, Table
from hpo.trained.predict import read_meta

OUTPUTS = ("text", *FORMATS)
HEADLINE = "the model's decision over all its labels (a label the corpus lacks counts as wrong)"
RESTRICTED = "restricted: the most probable shared label"


@dataclass
class Evaluation:
    """What ``hpo evaluate`` prints: provenance, the label sets and the tables."""

    model: dict[str, Any]
    corpus: dict[str, Any]
    shared: list[str]
    model_only: list[str]
    corpus_only: dict[str, int]  # label -> its clips, left out
    clips: list[dict[str, Any]]  # the scored clips: path, speaker, label, predicted, restricted
    tables: dict[str, Table] = field(default_factory=dict)


def evaluate(
    model_dir: Path, data: Path, progress: Callable[[str], None] | None = None
) -> Evaluation:
    """Score the model in ``model_dir`` on the prepared corpus ``data``."""
    meta = read_meta(model_dir)
    corpus = load_corpus(data)
    labels = list(meta["labels"])
    shared = [lab for lab in labels if lab in corpus.labels]
    if len(shared) < 2:
        raise HpoError(
            f"{corpus.root}: shares {len(shared)} label(s) ({', '.join(shared) or 'none'}) with "
            f"the model {model_dir} (model: {', '.join(labels)}; corpus: "
            f"{', '.join(corpus.labels)}); cross-corpus evaluation needs at least two"
        )
    decided, probs = _classify_by_speaker(model_dir, meta, corpus, progress)
    cols = [labels.index(lab) for lab in shared]
    clips = [
        {
            "path": c.path,
            "speaker": c.speaker,
            "label": c.label,
            "predicted": labels[int(decided[i])],
            "restricted": shared[int(np.argmax(probs[i, cols]))],
        }
        for i, c in enumerate(corpus.clips)
        if c.label in shared
    ]
    left_out = [c.label for c in corpus.clips if c.label not in shared]
    ev = Evaluation(
        model=_model_info(model_dir, meta),
        corpus=_corpus_info(corpus),
        shared=shared,
        model_only=[lab for lab in labels if lab not in corpus.labels],
        corpus_only={lab: left_out.count(lab) for lab in corpus.labels if lab not in labels},
        clips=clips,
    )
    ev.tables = _tables(ev, labels)
    return ev


def _classify_by_speaker(
    model_dir: Path, meta: dict[str, Any], corpus: Corpus, progress
) -> tuple[np.ndarray, np.ndarray]:
    """(decision, probabilities) of every clip, each speaker's clips classified together."""
    kind = get_kind(meta["kind"])
    norm = kind.speaker_norm(meta)
    groups = {s: np.flatnonzero(corpus.speakers == s) for s in dict.fromkeys(corpus.speakers)}
    few = [(s, len(ix)) for s, ix in groups.items() if len(ix) < MIN_GIVEN_CLIPS]
    if norm.mode == "transductive" and few:
        raise HpoError(
            f"{corpus.root}: speaker {few[0][0]} has {few[0][1]} clips, but the model "
            f"{model_dir} normalises features over each speaker's clips and needs at least "
            f"{MIN_GIVEN_CLIPS}; evaluate on a corpus with more clips per speaker, or a model "
            "trained without speaker normalisation"
        )
    # The model's own rule on each evaluated speaker's clips, as in its cross-validation
    # (enrolment: the same leave-one-out statistics; labels only pick neutral clips).
    names = [c.label for c in corpus.clips]
    stats = (
        {
            s: stats_groups(norm, np.zeros(len(ix)), [names[i] for i in ix], str(corpus.root))
            for s, ix in groups.items()
        }
        if norm.on
        else {}
    )
    n_labels = len(meta["labels"])
    decided = np.empty(len(corpus.clips), dtype=np.int64)
    probs = np.empty((len(corpus.clips), n_labels))
    for k, (speaker, ix) in enumerate(groups.items(), start=1):
        if progress:
            progress(f"speaker {speaker} ({k}/{len(groups)}): {len(ix)} clips")
        waves = [load_clip(str(corpus.clip_path(corpus.clips[i]))) for i in ix]
        d, p = kind.classify(model_dir, meta, waves, stats.get(speaker))
        if np.shape(p)[1] != n_labels:
            # A label without a probability (or the reverse) would misname every prediction.
            raise HpoError(
                f"{model_dir}: the model gives {np.shape(p)[1]} probabilities for {n_labels} "
                "labels; train it again with 'hpo train'"
            )
        decided[ix], probs[ix] = d, p
    return decided, probs


def _model_info(model_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    origin = meta.get("from_export", {})
    return {
        "path": str(model_dir),
        "kind": meta["kind"],
        "labels": list(meta["labels"]),
        "study": origin.get("study"),
        "trial": origin.get("trial"),  # models trained before it was recorded: None
        "metric": origin.get("metric"),
        "cv_value": origin.get("cv_value"),
        "trained_on": meta.get("trained_on", {}),
        "random_init_model": bool(meta.get("random_init_model", False)),
        "speaker_norm": get_kind(meta["kind"]).speaker_norm(meta).sentence(),
    }


def _corpus_info(corpus: Corpus) -> dict[str, Any]:
    return {
        "path": str(corpus.root),
        "name": corpus.name,
        "manifest_hash": corpus.manifest_hash,
        "synthetic": corpus.synthetic,
        "clips": len(corpus.clips),
        "labels": list(corpus.labels),
    }


def scores(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, float]:
    """Accuracy; UAR and macro-F1 over ``labels`` (the shared labels with clips), whatever
    else was predicted."""
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    kw: dict[str, Any] = {"labels": labels, "average": "macro", "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uar": float(recall_score(y_true, y_pred, **kw)),
        "macro_f1": float(f1_score(y_true, y_pred, **kw)),
    }


def _tables(ev: Evaluation, labels: list[str]) -> dict[str, Table]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = [c["label"] for c in ev.clips]
    y_pred = [c["predicted"] for c in ev.clips]
    present = [lab for lab in ev.shared if lab in y_true]
    n = len(ev.clips)
    summary = Table(
        ["decision", "clips", "accuracy", "UAR", "macro-F1"],
        caption=f"{_title(ev)}: {n} clips of {len(present)} shared labels; UAR and macro-F1 "
        f"over those labels. Headline: {HEADLINE}",
    )
    for name, key in (("model's decision (headline)", "predicted"), (RESTRICTED, "restricted")):
        s = scores(y_true, [c[key] for c in ev.clips], present)
        summary.add(name, n, s["accuracy"], s["uar"], s["macro_f1"])
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=present, zero_division=0
    )
    predicted = {lab: y_pred.count(lab) for lab in present}
    per_label = Table(
        ["label", "clips", "recall", "precision", "F1"],
        caption="Per shared label, the model's decision (precision – where never predicted)",
    )
    for i, lab in enumerate(present):
        p = float(prec[i]) if predicted[lab] else float("nan")
        per_label.add(lab, int(support[i]), float(rec[i]), p, float(f1[i]))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    confusion = Table(
        ["true \\ predicted", *labels],
        caption="Confusion matrix (clips): rows the shared labels, columns all the model's",
    )
    for lab in present:
        confusion.add(lab, *(int(x) for x in cm[labels.index(lab)]))
    return {
        "provenance": _provenance(ev),
        "labels": _label_table(ev, labels),
        "summary": summary,
        "per_label": per_label,
        "confusion": confusion,
    }


def _title(ev: Evaluation) -> str:
    return f"{ev.model['study'] or ev.model['path']} on {_corpus_name(ev.corpus)}"


def _corpus_name(info: dict[str, Any]) -> str:
    return f"{info.get('name', '?')}{' (SYNTHETIC)' if info.get('synthetic') else ''}"


def _provenance(ev: Evaluation) -> Table:
    m, c, t = ev.model, ev.corpus, ev.model["trained_on"]
    cv = f"{m['metric']} {m['cv_value']:.4g}" if m["cv_value"] is not None else None
    table = Table(["", "model", "evaluated on"], caption="Model and corpus")
    table.add("path", m["path"], c["path"])
    table.add("corpus", _corpus_name(t), _corpus_name(c))
    table.add("synthetic corpus", _yes(t.get("synthetic")), _yes(c["synthetic"]))
    table.add("manifest hash", t.get("manifest_hash"), c["manifest_hash"])
    table.add("clips", t.get("clips"), c["clips"])
    table.add("kind", m["kind"], None)
    table.add("study, trial", f"{_or_dash(m['study'])}, trial {_or_dash(m['trial'])}", None)
    table.add("cross-validated", cv, None)
    table.add("speaker norm", m["speaker_norm"], None)
    return table


def _yes(flag: Any) -> str:
    return "yes (SYNTHETIC)" if flag else "no"


def _or_dash(v: Any) -> str:
    return "–" if v is None else str(v)


def _label_table(ev: Evaluation, labels: list[str]) -> Table:
    counts = {lab: sum(c["label"] == lab for c in ev.clips) for lab in ev.shared}
    table = Table(
        ["label", "model", "corpus", "corpus clips", "scored"],
        caption=f"Labels: {len(ev.shared)} shared, scored; only the model's "
        f"({', '.join(ev.model_only) or 'none'}) and only the corpus's "
        f"({', '.join(ev.corpus_only) or 'none'}: {sum(ev.corpus_only.values())} clips) "
        "left out",
    )
    for lab in labels:
        shared = lab in counts
        n = counts.get(lab, 0)
        table.add(lab, "yes", "yes" if shared else "no", n, n if shared else 0)
    for lab, n in ev.corpus_only.items():
        table.add(lab, "no", "yes", n, 0)
    return table


def as_json(ev: Evaluation) -> dict[str, Any]:
    """One object: provenance, label sets, every table and the scored clips."""
    return {
        "model": ev.model,
        "corpus": ev.corpus,
        "shared_labels": ev.shared,
        "model_only_labels": ev.model_only,
        "corpus_only_labels": ev.corpus_only,
        "headline": HEADLINE,
        "tables": {k: t.as_dict() for k, t in ev.tables.items()},
        "clips": ev.clips,
    }


def render(ev: Evaluation, fmt: str) -> str:
    """``ev`` as one of :data:`OUTPUTS` (``text``: aligned columns for a terminal)."""
    import json

    if fmt == "json":
        return json.dumps(as_json(ev), indent=2) + "\n"
    tables = list(ev.tables.values())
    if fmt == "text":
        return "\n".join(t.plain() for t in tables)
    if fmt == "csv":  # one block a table, its caption a comment line above it
        return "\n".join(f"# {t.caption}\n{t.csv()}" for t in tables)
    return "\n".join(t.render(fmt) for t in tables) + ("\n" if fmt == "html" else "")
