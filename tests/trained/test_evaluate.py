"""``hpo evaluate``: a RAVDESS-layout model scored on an EmoDB-layout corpus, on the six
labels the two share, with the numbers scikit-learn gives on the same predictions."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
)

from hpo.cli import cli
from hpo.corpus.audio import load_clip
from hpo.corpus.manifest import load_corpus
from hpo.corpus.prepare import prepare
from hpo.kinds import get_kind, load_spec
from hpo.trained.evaluate import evaluate, render
from tests.helpers import RELEASE_SIZES, write_spec

SHARED = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
# Speaker normalisation on: what makes per-speaker classification matter.
PARAMS = {"feature_set": "librosa", "speaker_norm": True, "kernel": "linear", "C": 1.0}


def _export(tmp: Path, prepared: Path, params: dict) -> Path:
    """An exported configuration of ``params``, as 'hpo export' writes it (no study run)."""
    spec = load_spec(write_spec(tmp / "svm.toml", data={"corpus": str(prepared)}))
    config = {**spec.settings.merged(params), "kind": "svm", "name": "svm", "data": {}}
    labels = list(load_corpus(prepared).labels)
    doc = {"study": "svm-ravdess", "trial": 7, "value": 0.5, "metric": "accuracy"}
    out = tmp / "best.json"
    out.write_text(json.dumps({**doc, "labels": labels, "config": config}))
    return out


def _train(tmp: Path, prepared: Path, params: dict) -> Path:
    model = tmp / "model"
    args = ["train", "--config", str(_export(tmp, prepared, params)), "--out", str(model)]
    res = CliRunner().invoke(cli, [*args, "--data", str(prepared)])
    assert res.exit_code == 0, res.output
    return model


@pytest.fixture(scope="module")
def model(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SVM trained with 'hpo train' on the session corpus (RAVDESS layout, 8 labels)."""
    return _train(tmp_path_factory.mktemp("svm-model"), prepared, PARAMS)


@pytest.fixture(scope="module")
def emodb(release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic EmoDB-layout corpus: 4 speakers x 8 clips (each of its 7 labels, one
    twice), the fewest a speaker that speaker normalisation takes."""
    out = tmp_path_factory.mktemp("emodb") / "corpus"
    prepare(release("emodb", 4, 8), out, jobs=1)
    return out


@pytest.fixture(scope="module")
def evaluated(model: Path, emodb: Path) -> dict:
    """'hpo evaluate --format json' of the model on the EmoDB corpus."""
    res = CliRunner().invoke(
        cli, ["evaluate", "--model", str(model), "--data", str(emodb), "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_the_shared_labels_are_scored_and_the_others_listed(evaluated: dict, emodb: Path):
    corpus = load_corpus(emodb)
    assert evaluated["shared_labels"] == SHARED
    assert evaluated["model_only_labels"] == ["calm", "surprised"]
    bored = sum(c.label == "bored" for c in corpus.clips)
    assert bored and evaluated["corpus_only_labels"] == {"bored": bored}
    # Every clip of a shared label is scored, each once; no bored clip is.
    scored = [c["path"] for c in evaluated["clips"]]
    assert sorted(scored) == sorted(c.path for c in corpus.clips if c.label != "bored")
    rows = {r["label"]: r for r in evaluated["tables"]["labels"]["rows"]}
    assert rows["bored"] == {
        "label": "bored",
        "model": "no",
        "corpus": "yes",
        "corpus clips": bored,
        "scored": 0,
    }
    happy = sum(c.label == "happy" for c in corpus.clips)
    assert rows["calm"]["corpus"] == "no" and rows["happy"]["scored"] == happy
    # Which model, and which corpus: synthetic said.
    assert evaluated["corpus"] == {
        "path": str(emodb),
        "name": "emodb",
        "manifest_hash": corpus.manifest_hash,
        "synthetic": True,
        "clips": 32,
        "labels": list(corpus.labels),
    }
    m = evaluated["model"]
    assert (m["study"], m["trial"], m["kind"]) == ("svm-ravdess", 7, "svm")
    assert m["trained_on"]["name"] == "ravdess" and m["trained_on"]["synthetic"] is True


def test_the_numbers_are_scikit_learns_on_the_same_predictions(evaluated: dict) -> None:
    clips = evaluated["clips"]
    y, pred = [c["label"] for c in clips], [c["predicted"] for c in clips]
    labels = evaluated["model"]["labels"]
    assert set(pred) - set(SHARED)  # some clips called calm or surprised: counted wrong
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        uar = balanced_accuracy_score(y, pred)
    summary = evaluated["tables"]["summary"]["rows"]
    head, restricted = summary
    assert head["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert head["UAR"] == pytest.approx(uar, abs=1e-12)
    assert head["macro-F1"] == pytest.approx(f1_score(y, pred, labels=SHARED, average="macro"))
    assert head["clips"] == len(clips) == 32 - evaluated["corpus_only_labels"]["bored"]
    r = [c["restricted"] for c in clips]
    assert set(r) <= set(SHARED)
    assert restricted["accuracy"] == pytest.approx(accuracy_score(y, r), abs=1e-12)
    assert restricted["UAR"] == pytest.approx(balanced_accuracy_score(y, r), abs=1e-12)
    recall = recall_score(y, pred, labels=SHARED, average=None)
    per_label = evaluated["tables"]["per_label"]["rows"]
    assert [row["label"] for row in per_label] == SHARED
    assert [row["recall"] for row in per_label] == pytest.approx(recall.tolist())
    # Rows: the shared true labels; columns: every label the model can answer.
    cm = confusion_matrix(y, pred, labels=labels)[[labels.index(lab) for lab in SHARED]]
    confusion = evaluated["tables"]["confusion"]
    assert confusion["columns"] == ["true \\ predicted", *labels]
    assert [[row[lab] for lab in labels] for row in confusion["rows"]] == cm.tolist()


def test_every_format_shows_the_same_numbers(model: Path, emodb: Path, evaluated: dict):
    ev = evaluate(model, emodb)
    head = evaluated["tables"]["summary"]["rows"][0]
    assert json.loads(render(ev, "json"))["tables"] == evaluated["tables"]
    blocks = render(ev, "csv").split("\n# ")
    summary = next(b for b in blocks if "Headline" in b.splitlines()[0])
    first = next(csv.DictReader(io.StringIO(summary.split("\n", 1)[1])))
    assert float(first["accuracy"]) == head["accuracy"] and float(first["UAR"]) == head["UAR"]
    shown = f"{head['accuracy']:.3g}"
    for fmt in ("text", "md", "tex", "html"):
        out = render(ev, fmt)
        assert shown in out and "SYNTHETIC" in out, fmt
    assert r"\toprule" in render(ev, "tex")
    text = render(ev, "text")
    assert "left out" in text and "calm, surprised" in text and "(bored: " in text
    assert "a label the corpus lacks counts as wrong" in text


@pytest.mark.slow
def test_each_evaluated_speaker_is_normalised_over_their_own_clips(
    model: Path, emodb: Path, evaluated: dict
) -> None:
    corpus = load_corpus(emodb)
    meta = json.loads((model / "hpo.json").read_text())
    kind, labels = get_kind("svm"), meta["labels"]
    waves = [load_clip(str(corpus.clip_path(c))) for c in corpus.clips]
    per_speaker = {}
    for s in dict.fromkeys(corpus.speakers):
        ix = np.flatnonzero(corpus.speakers == s)
        every = [(np.arange(len(ix)),) * 2]  # transductive: all the speaker's clips
        decided, _ = kind.classify(model, meta, [waves[i] for i in ix], every)
        per_speaker |= {corpus.clips[i].path: labels[d] for i, d in zip(ix, decided, strict=True)}
    got = {c["path"]: c["predicted"] for c in evaluated["clips"]}
    assert got == {p: lab for p, lab in per_speaker.items() if p in got}
    # All clips as one speaker (what 'hpo predict' does with what it is given) differs.
    decided, _ = kind.classify(model, meta, waves, [(np.arange(len(waves)),) * 2])
    as_one = {c.path: labels[d] for c, d in zip(corpus.clips, decided, strict=True)}
    assert got != {p: lab for p, lab in as_one.items() if p in got}


def _refused(args: list[str], needle: str) -> None:
    res = CliRunner().invoke(cli, args)
    out = res.output.strip()
    assert res.exit_code == 2 and len(out.splitlines()) == 1, out
    assert needle in out and "Traceback" not in out, out
    assert not res.stdout


def test_a_corpus_sharing_fewer_than_two_labels_is_refused(
    model: Path, release, tmp_path: Path
) -> None:
    src = release("savee", *RELEASE_SIZES["savee"])
    shutil.copytree(src / "AudioData", tmp_path / "mine" / "audio")
    wavs = sorted((tmp_path / "mine" / "audio").rglob("*.wav"))
    # Angry (RAVDESS's too) and two made-up labels.
    rows = [
        f"audio/{p.parent.name}/{p.name},{p.parent.name},{('angry', 'grumpy', 'meh')[i % 3]}\n"
        for i, p in enumerate(wavs)
    ]
    (tmp_path / "mine" / "list.csv").write_text("path,speaker,label\n" + "".join(rows))
    corpus = tmp_path / "corpus"
    prepare(None, corpus, manifest=tmp_path / "mine" / "list.csv", jobs=1)
    before = sorted(p for p in tmp_path.rglob("*")) + sorted(model.rglob("*"))
    _refused(
        ["evaluate", "--model", str(model), "--data", str(corpus)],
        f"{corpus}: shares 1 label(s) (angry) with the model {model}",
    )
    assert sorted(p for p in tmp_path.rglob("*")) + sorted(model.rglob("*")) == before


def test_a_speaker_too_few_clips_to_normalise_is_refused(model: Path, release, tmp_path: Path):
    # The corpus tests' EmoDB release: 7 clips a speaker, one under what normalisation needs.
    prepare(release("emodb", *RELEASE_SIZES["emodb"]), tmp_path / "corpus", jobs=1)
    _refused(
        ["evaluate", "--model", str(model), "--data", str(tmp_path / "corpus")],
        "has 7 clips, but the model",
    )
