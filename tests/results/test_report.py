from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.results.report import FIGURES
from hpo.trial.predictions import of_trial
from tests.browser import DumpDom
from tests.helpers import ONE_FEATURE_SET, write_spec


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> Path:
    """A 5-trial SVM study on the session corpus; tests copy it before changing it."""
    tmp = tmp_path_factory.mktemp("report")
    spec = write_spec(
        tmp / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 3},
        space=ONE_FEATURE_SET,
    )
    db = tmp / "s.db"
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "5", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    return db


def _report(db: Path, out: Path, *args: str) -> str:
    res = CliRunner().invoke(
        cli, ["report", "--study", "svm", "--storage", str(db), "--out", str(out), *args]
    )
    assert res.exit_code == 0, res.output
    return res.output


def test_report_writes_every_figure_and_a_self_contained_page(
    study_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rep"
    _report(study_db, out)
    for name in FIGURES:
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    page = (out / "index.html").read_text()
    # Self-contained: every figure embedded, no file references, nothing fetched.
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    assert '.png"' not in page and "http" not in page
    assert "SYNTHETIC corpus" in page and "Study svm" in page
    # Each searched feature set and speaker_norm choice with its best value.
    assert "<td>feature_set</td>" in page and "<td>speaker_norm</td>" in page
    assert "No nested estimate yet" in page
    # Every figure says what it shows, not its file name.
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert len(captions) == len(FIGURES) and all(len(c) > 60 for c in captions)


def _sklearn(trial: optuna.trial.FrozenTrial, corpus_root: Path) -> dict:
    preds = of_trial(trial)
    y_true = load_corpus(corpus_root).label_ids[preds.clips]
    y = (y_true, preds.pred)
    p, r, f, n = precision_recall_fscore_support(*y, labels=range(8), zero_division=0)
    return {
        "accuracy": accuracy_score(*y),
        "UAR": balanced_accuracy_score(*y),
        "macro-F1": f1_score(*y, average="macro", labels=np.unique(y_true), zero_division=0),
        "per_label": list(zip(n, r, p, f, strict=True)),
        "confusion": confusion_matrix(*y, labels=range(8)),
    }


def _check_every_format(out: Path, trial: optuna.trial.FrozenTrial, corpus: Path) -> None:
    want = _sklearn(trial, corpus)
    doc = json.loads((out / "report.json").read_text())
    assert doc["trial"] == trial.number
    results = {r["metric"]: r for r in doc["tables"]["results"]["rows"]}
    md = (out / "report.md").read_text()
    tex = (out / "report.tex").read_text()
    page = (out / "index.html").read_text()
    rows = {r[0]: r for r in csv.reader((out / "csv" / "results.csv").open())}
    folds = trial.user_attrs["fold_accuracy"]
    mean, std = np.mean(folds), np.std(folds, ddof=1)
    assert results["accuracy"]["mean ± std over folds"] == pytest.approx(
        {"mean": mean, "std": std}, abs=1e-5
    )
    assert f"**{mean:#.3g} ± {std:#.3g}**" in md and rf"\textbf{{{mean:#.3g} $\pm$ " in tex
    for m in ("accuracy", "UAR", "macro-F1"):
        v = want[m]
        assert results[m]["pooled"] == pytest.approx(v, abs=1e-5)
        assert float(rows[m][3]) == pytest.approx(v, abs=1e-5)  # metric, mean, std, pooled
        assert f" | {v:#.3g} | " in md and f" & {v:#.3g} & " in tex and f"<td>{v:#.3g}</td>" in page
        lo, hi = results[m]["95% CI low"], results[m]["95% CI high"]
        assert lo <= results[m]["pooled"] <= hi and hi > lo
    labels = doc["tables"]["per_label"]["rows"]
    for row, (n, r, p, f) in zip(labels, want["per_label"], strict=True):
        assert row["clips"] == n
        assert [row["recall"], row["precision"], row["F1"]] == pytest.approx([r, p, f], abs=1e-5)
    cm = [
        [row[k] for k in doc["tables"]["confusion"]["columns"][1:]]
        for row in doc["tables"]["confusion"]["rows"]
    ]
    assert cm == want["confusion"].tolist()
    first = " | ".join(str(x) for x in want["confusion"][0])
    assert f"| neutral | {first} |" in md


def test_every_format_shows_scikit_learns_numbers_on_the_stored_predictions(
    study_db: Path, tmp_path: Path, prepared: Path
) -> None:
    out = tmp_path / "rep"
    printed = _report(study_db, out, "--format", "all")
    for f in ("index.html", "report.md", "report.tex", "csv", "report.json"):
        assert f"wrote {out / f}\n" in printed
    best = optuna.load_study(study_name="svm", storage=f"sqlite:///{study_db}").best_trial
    _check_every_format(out, best, prepared)
    # Per fold: the fold's validation speakers beside its scores.
    folds = json.loads((out / "report.json").read_text())["tables"]["folds"]["rows"]
    speakers = optuna.load_study(study_name="svm", storage=f"sqlite:///{study_db}").user_attrs[
        "fold_actors"
    ]
    assert [r["validation speakers"] for r in folds] == [
        ", ".join(map(str, speakers[str(r["fold"])])) for r in folds
    ]
    assert len(folds) == 6 and all(len(s) == 4 for s in speakers.values())
    assert [r["accuracy"] for r in folds] == pytest.approx(best.user_attrs["fold_accuracy"])
    # Nothing a person reads holds a Python repr or a 16-digit float.
    texts = [p.read_text() for p in out.rglob("*") if p.suffix in (".md", ".tex", ".csv", ".json")]
    texts.append(re.sub(r"data:image/png;base64,[^\"]+", "", (out / "index.html").read_text()))
    for text in texts:
        assert "{'" not in text and not re.search(r"\d\.\d{10,}", text)


def test_report_on_another_trial(study_db: Path, tmp_path: Path, prepared: Path) -> None:
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{study_db}")
    other = next(t for t in study.trials if t.number != study.best_trial.number)
    out = tmp_path / "rep"
    _report(study_db, out, "--trial", str(other.number), "--format", "all")
    _check_every_format(out, other, prepared)
    assert f"Study svm: trial #{other.number}</h1>" in (out / "index.html").read_text()
    res = CliRunner().invoke(
        cli, ["report", "--study", "svm", "--storage", str(study_db), "--trial", "99"]
    )
    assert res.exit_code == 2 and "has no trial 99" in res.output
    assert "Traceback" not in res.output


def test_a_trial_without_clip_predictions_reports_what_it_can(
    study_db: Path, tmp_path: Path
) -> None:
    # A study written before trials kept their predictions.
    db = tmp_path / "old.db"
    shutil.copy(study_db, db)
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM trial_user_attributes WHERE key = 'clip_predictions'")
    out = tmp_path / "rep"
    _report(db, out, "--format", "all")
    md = (out / "report.md").read_text()
    assert "kept no per-clip predictions" in md and "need a newer run" in md
    doc = json.loads((out / "report.json").read_text())
    best = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}").best_trial
    folds = doc["tables"]["folds"]["rows"]
    assert [r["accuracy"] for r in folds] == pytest.approx(best.user_attrs["fold_accuracy"])
    (acc,) = [r for r in doc["tables"]["results"]["rows"] if r["metric"] == "accuracy"]
    assert acc["95% CI low"] is None  # no interval without the clips' speakers
    cm = np.array(best.user_attrs["confusion"])
    assert acc["pooled"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-5)


def test_a_corpus_not_on_this_machine_is_one_line(study_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    _report(study_db, out, "--format", "md", "--data", str(tmp_path / "elsewhere"))
    md = (out / "report.md").read_text()
    assert f"Corpus not found at {tmp_path / 'elsewhere'}" in md and "--data DIR" in md
    assert "| accuracy |" in md  # the rest of the report is there


def test_report_on_a_study_without_complete_trials(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    optuna.create_study(study_name="empty", storage=f"sqlite:///{db}")
    res = CliRunner().invoke(cli, ["report", "--study", "empty", "--storage", str(db)])
    assert res.exit_code == 2 and "no complete trial" in res.output


_FIRST_SCREEN = """<script>
const bottom = id => Math.round(document.getElementById(id).getBoundingClientRect().bottom);
document.title = JSON.stringify({results: bottom("results"), per_label: bottom("per_label"),
  confusion: bottom("confusion"), width: document.documentElement.scrollWidth});
</script></body>"""


@pytest.mark.slow
@pytest.mark.browser
def test_report_page_reads_back_in_chromium_with_the_result_on_the_first_screen(
    chromium: DumpDom,
    study_db: Path,
    tmp_path: Path,  # chromium first: skip at once
) -> None:
    out = tmp_path / "rep"
    _report(study_db, out)
    page = out / "probe.html"  # the report, plus a script measuring where its tables end
    page.write_text((out / "index.html").read_text().replace("</body>", _FIRST_SCREEN))
    dom = chromium(page.as_uri(), "--window-size=1400,900")
    assert "<th>mean ± std over folds</th>" in dom and "<td>accuracy</td>" in dom
    assert "bootstrap resamples of the 24 speakers" in dom  # the results table's caption
    assert "<figcaption>Optimisation history, against trials" in dom
    where = json.loads(re.search(r"<title>(.*?)</title>", dom).group(1))
    # Mean ± std, per-label F1 and the confusion matrix above 900 px, no sideways scroll.
    assert max(where["results"], where["per_label"], where["confusion"]) < 900, where
    assert where["width"] <= 1400, where
