"""The report's tables: the nested estimate beside the best-of-N value, readable params."""

from __future__ import annotations

import json

from hpo.results.report_tables import estimates_table, params_table, params_text
from hpo.results.tables import MeanStd
from hpo.trial.metrics import CvValue

BEST = CvValue(number=7, value=0.7083333333333334, folds_run=6, folds=6, partial=False)


def _selection(nested: dict | None, command: str | None) -> dict:
    """``hpo.results.honest.best_selection``'s block, as the report passes it."""
    return {"study": "svm", "best_of": 12, "nested": nested, "nested_command": command}


def test_the_nested_estimate_stands_beside_the_best_of_n_and_is_named_the_honest_one() -> None:
    nested = {"estimate": 0.61234, "std": 0.05, "folds": 6, "of_folds": 6}
    t = estimates_table(BEST, _selection(nested, None))
    assert [r[0] for r in t.rows] == ["best of 12 (trial #7), optimistic", "nested CV (honest)"]
    assert t.rows[1][1] == MeanStd(0.61234, 0.05) and "optimistic" in t.caption
    assert "sample std over outer folds, ddof=1" in t.caption
    assert "| nested CV (honest) | 0.612 ± 0.0500 | 6 of 6 outer folds |" in t.markdown()
    assert json.loads(t.render("json"))["rows"][0]["value"] == 0.708333  # no 16 digits


def test_without_a_nested_run_the_table_names_the_command() -> None:
    t = estimates_table(BEST, _selection(None, "hpo nested --study svm"), reran=False)
    assert len(t.rows) == 1 and "hpo nested --study svm computes the honest one" in t.caption
    assert "hpo rerun --study svm --seeds 5" in t.caption


def test_parameters_read_as_a_person_writes_them() -> None:
    # An rbf trial has no degree or coef0: only what applies is shown.
    params = {"kernel": "rbf", "C": 950.3556694930434, "gamma": 0.00010743, "speaker_norm": True}
    assert params_text(params) == "kernel=rbf, C=950, gamma=0.000107, speaker_norm=True"
    t = params_table(3, params)
    assert t.rows == [
        ["kernel", "rbf"],
        ["C", "950"],
        ["gamma", "0.000107"],
        ["speaker_norm", "True"],
    ]
