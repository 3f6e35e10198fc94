"""``hpo evaluate`` on a w2v model (a probe on the tiny backbone): the label is the kind's
own decision, clip by clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score

from hpo.cli import cli
from hpo.corpus.audio import load_clip
from hpo.corpus.manifest import load_corpus
from hpo.corpus.prepare import prepare
from hpo.kinds import get_kind, load_spec
from tests.helpers import write_spec
from tests.kinds.w2v.settings import MAX_SECONDS, TINY_LAYERS

PARAMS = {"learning_rate": 1e-3, "warmup_ratio": 0.1, "max_grad_norm": "off", "pooling": "mean"}


@pytest.mark.slow
def test_a_probe_trained_on_ravdess_is_evaluated_on_emodb(
    w2v_corpus: Path, release, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path / "probe.toml",
        base="w2v-probe",
        data={"corpus": str(w2v_corpus)},
        model={"name": "tiny"},
        space=TINY_LAYERS,
        training={"epochs": 2.0, "max_seconds": MAX_SECONDS, "tensorboard_dir": "runs"},
    )
    config = {**load_spec(spec).settings.merged(PARAMS), "kind": "w2v", "name": "w2v-probe"}
    export = tmp_path / "best.json"
    export.write_text(json.dumps({"study": "w2v-probe", "trial": 0, "config": config}))
    model, run = tmp_path / "model", CliRunner()
    args = ["train", "--config", str(export), "--out", str(model), "--data", str(w2v_corpus)]
    res = run.invoke(cli, args)
    assert res.exit_code == 0, res.output
    emodb = tmp_path / "emodb"
    prepare(release("emodb", 4, 8), emodb, jobs=1)
    args = ["evaluate", "--model", str(model), "--data", str(emodb), "--format", "json"]
    res = run.invoke(cli, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["model_only_labels"] == ["calm", "surprised"] and list(
        doc["corpus_only_labels"]
    ) == ["bored"]
    corpus, meta = load_corpus(emodb), json.loads((model / "hpo.json").read_text())
    scored = [c for c in corpus.clips if c.label != "bored"]
    waves = [load_clip(str(corpus.clip_path(c))) for c in scored]
    decided, _ = get_kind("w2v").classify(model, meta, waves)
    assert [c["predicted"] for c in doc["clips"]] == [meta["labels"][i] for i in decided]
    y = [c.label for c in scored]
    acc = accuracy_score(y, [meta["labels"][i] for i in decided])
    assert doc["tables"]["summary"]["rows"][0]["accuracy"] == pytest.approx(acc, abs=1e-12)
