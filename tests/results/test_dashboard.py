"""optuna-dashboard served by ``hpo dashboard`` on the study storage."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpo.kinds import load_spec
from hpo.study.run import run_study
from tests.browser import DumpDom
from tests.helpers import ONE_FEATURE_SET, ROOT, write_spec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> Path:
    """A two-trial study; the dashboard tests only read it."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    spec = load_spec(
        write_spec(tmp_path / "svm.toml", data={"corpus": str(prepared)}, space=ONE_FEATURE_SET)
    )
    db = tmp_path / "s.db"
    run_study(spec, str(db), n_trials=2)
    return db


@pytest.fixture(scope="module")
def dashboard(finished_study: Path) -> Iterator[str]:
    """``hpo dashboard`` serving the finished study (one server for the module's tests, which
    only read from it); yields its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpo",
            "dashboard",
            "--storage",
            str(finished_study),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _get(f"{base}/api/studies")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("dashboard did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_serves_the_study_with_per_fold_attributes(dashboard: str) -> None:
    (summary,) = _get(f"{dashboard}/api/studies")["study_summaries"]
    assert summary["study_name"] == "svm"
    detail = _get(f"{dashboard}/api/studies/{summary['study_id']}?after=0")
    assert len(detail["trials"]) == 2
    keys = {a["key"] for a in detail["trials"][0]["user_attrs"]}
    assert {"fold_accuracy", "fold_uar", "fold_macro_f1"} <= keys
    # The objective is named, not "Objective 0".
    assert detail["objective_names"] == ["uar"]  # the shipped svm study's metric
    # The study note: description and provenance.
    assert "speaker folds" in detail["note"]["body"] and "manifest_hash" in detail["note"]["body"]
    # Every finished trial's note: per-fold scores and the confusion matrix as tables.
    for t in detail["trials"]:
        body = t["note"]["body"]
        assert "| accuracy |" in body and "| angry |" in body
        fold_acc = next(a["value"] for a in t["user_attrs"] if a["key"] == "fold_accuracy")
        assert f"{json.loads(fold_acc)[0]:.3f}" in body
    # The best trial's confusion matrix is a PNG artifact the dashboard can serve.
    (best,) = detail["best_trials"]
    (art,) = [a for a in best["artifacts"] if a["filename"] == "confusion.png"]
    assert art["mimetype"] == "image/png"
    with urllib.request.urlopen(
        f"{dashboard}/artifacts/{summary['study_id']}/{best['trial_id']}/{art['artifact_id']}",
        timeout=5,
    ) as r:
        assert r.read(8) == b"\x89PNG\r\n\x1a\n"


def test_dashboard_on_missing_storage_fails_cleanly(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "hpo", "dashboard", "--storage", str(tmp_path / "nope.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "no such study database" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
@pytest.mark.browser
def test_dashboard_renders_study_trials_and_fold_attributes_in_chromium(
    chromium: DumpDom,
    dashboard: str,  # chromium first: where it is missing, skip at once
) -> None:
    # What the JSON API serves is checked above; this checks that the single-page app
    # renders it: one page (one browser start) showing the study, its trials, their notes
    # and per-fold attributes. Let its scripts fetch and render first.
    trials = chromium(f"{dashboard}/dashboard/studies/1/trials", "--virtual-time-budget=10000")
    assert "svm" in trials  # the study's name
    assert "Scores per speaker fold" in trials  # the trial note
    assert "fold_accuracy" in trials and "fold_uar" in trials  # per-fold user attributes
    assert "Trial 1" in trials or "Trial 0" in trials
