"""One table, five formats, the same numbers."""

from __future__ import annotations

import csv
import io
import json

from hpo.results.tables import Best, MeanStd, Table, tex_escape


def _table() -> Table:
    t = Table(["study", "accuracy", "C"], caption="mean ± std over 6 speaker folds")
    t.add("svm_a", Best(MeanStd(0.69834, 0.0412)), 950.3556694930434)
    t.add("w2v&probe", MeanStd(0.61, 0.05), 3.1e-05)
    return t


def test_every_format_shows_the_same_numbers() -> None:
    t = _table()
    md = t.render("md")
    assert "| svm_a | **0.698 ± 0.0412** | 950 |" in md and "3.1e-05" in md
    tex = t.render("tex")
    assert r"\textbf{0.698 $\pm$ 0.0412}" in tex and r"w2v\&probe" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\caption{mean ± std" in tex
    rows = list(csv.reader(io.StringIO(t.render("csv"))))
    assert rows[0] == ["study", "accuracy", "accuracy std", "C"]
    assert float(rows[1][1]) == 0.69834 and float(rows[1][2]) == 0.0412
    doc = json.loads(t.render("json"))
    assert doc["rows"][0]["accuracy"] == {"mean": 0.69834, "std": 0.0412}
    assert doc["rows"][1]["C"] == 3.1e-05
    page = t.render("html")
    assert "<td><b>0.698 ± 0.0412</b></td>" in page and "w2v&amp;probe" in page


def test_latex_escapes_label_names() -> None:
    assert tex_escape("pleasant_surprise & 50%") == r"pleasant\_surprise \& 50\%"


def test_a_column_of_scores_keeps_its_trailing_zeros() -> None:
    t = Table(["metric", "value"], zeros=True)
    t.add("accuracy", 0.7)
    t.add("C", 950.0)
    assert "| accuracy | 0.700 |" in t.markdown() and "| C | 950 |" in t.markdown()
    assert t.as_dict()["rows"][0]["value"] == 0.7
    t.zeros = False  # the default: as Python's "g" writes it
    assert "| accuracy | 0.7 |" in t.markdown()


def test_parameters_read_as_a_person_writes_them() -> None:
    from hpo.results.tables import params_text

    params = {"kernel": "rbf", "C": 707.2114131472224, "gamma": 0.7843393422707801}
    assert params_text(params) == "kernel=rbf, C=707, gamma=0.784"
