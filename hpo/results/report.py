"""``hpo report``: a study's result, leading with one trial's scores, as a self-contained
HTML page (figures embedded, nothing fetched), Markdown, LaTeX, CSV files or JSON.

Every format renders the same :class:`~hpo.results.tables.Table` objects
(``hpo.results.report_tables``), so a number is the same wherever it is pasted.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from hpo.config.paths import reports_dir
from hpo.errors import HpoError
from hpo.results import report_tables as rt
from hpo.results.disclosed import trial_speaker_norm
from hpo.results.edges import space_checks, warnings_html
from hpo.results.efficiency import search_efficiency
from hpo.results.figures import FIGURES, history_figure, write_figures
from hpo.results.summary import TrialSummary, summarize_trial
from hpo.results.tables import FORMATS, Table
from hpo.study.storage import load_study, open_storage, pick_trial
from hpo.trial.metrics import cv_value
from hpo.util.io import write_text_atomic

__all__ = ["FIGURES", "REPORT_FORMATS", "history_figure", "make_report"]

REPORT_FORMATS = (*FORMATS, "all")
HEADINGS = {
    "results": "Result",
    "per_label": "Per label",
    "confusion": "Confusion matrix",
    "confusion_normalised": "Confusion matrix, row-normalised",
    "folds": "Per fold",
    "params": "Parameters",
    "estimates": "Best-of-N and nested estimates",
    "reruns": "Seeds: the chosen configuration re-run",
    "top_trials": "Top complete trials",
    "pruned_trials": "Pruned trials, highest partial means",
    "best_per_choice": "Best value per choice",
}


@dataclass
class Report:
    """What every format shows: the study, one trial's summary, the tables, the notes."""

    name: str
    attrs: dict[str, Any]
    metric: str
    summary: TrialSummary
    tables: dict[str, Table]
    meta: list[str]  # lines about the study: corpus, kind, trials
    notes: list[str] = field(default_factory=list)  # what is missing, and why
    selection: dict[str, Any] = field(default_factory=dict)  # hpo.results.honest's
    checks: dict[str, Any] = field(default_factory=dict)
    # When the best came, in trials and search time (hpo.results.efficiency).
    efficiency: dict[str, Any] | None = None


REPORTABLE_WHY = "only a complete or pruned trial has scores to report"


def build_report(
    storage_url: str, name: str, trial: int | None = None, data: Path | None = None, top: int = 10
) -> tuple[Report, Any, Any]:
    """The :class:`Report` of study ``name`` (its best trial, or trial ``trial``); also the
    study and the trial, for the figures."""
    from hpo.results.honest import best_selection
    from hpo.study.rerun import stored_reruns

    study = load_study(open_storage(storage_url, create=False), name)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise HpoError(f"study '{name}' has no complete trial yet; nothing to report")
    attrs = study.user_attrs
    metric = attrs.get("metric", "value")
    maximize = study.direction.name == "MAXIMIZE"
    t = pick_trial(study, trial, (TrialState.COMPLETE, TrialState.PRUNED), REPORTABLE_WHY)
    s = summarize_trial(t, attrs, data)
    bt = study.best_trial
    selection = best_selection(storage_url, study)
    reruns = stored_reruns(attrs, study)
    tables = {"results": rt.results_table(s, metric, t.number == bt.number, len(complete))}
    # Named with the score in every format: what its per-speaker statistics came from.
    if norm := trial_speaker_norm(attrs, t):
        tables["results"].caption += f" Speaker normalisation: {norm.sentence()}."
    if s.confusion is not None:
        tables["per_label"] = rt.per_label_table(s)
        tables["confusion"], tables["confusion_normalised"] = rt.confusion_tables(s)
        tables["confusion_normalised"].shade = True
    tables["folds"] = rt.folds_table(s)
    tables["params"] = rt.params_table(t.number, t.params)
    tables["estimates"] = rt.estimates_table(cv_value(bt, metric), selection, bool(reruns))
    if reruns:
        tables["reruns"] = rt.reruns_table(reruns)
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    ranked = rt.trials_tables(finished, metric, maximize, top)
    tables |= dict(zip(("top_trials", "pruned_trials"), ranked, strict=False))
    if by_choice := rt.best_by_choice_table(complete, maximize):
        tables["best_per_choice"] = by_choice
    report = Report(
        name,
        attrs,
        metric,
        s,
        tables,
        _meta(study, attrs, metric),
        list(s.notes),
        selection,
        space_checks(complete, bt, metric, name, storage_url),
        search_efficiency(study.get_trials(deepcopy=False), metric, maximize).summary(),
    )
    return report, study, t


def _meta(study: Any, attrs: dict[str, Any], metric: str) -> list[str]:
    """Three lines: corpus and labels; kind, objective and trials; provenance."""
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    folds = len(attrs.get("fold_actors", {}))
    prov = [
        f"{what} {attrs[key]}"
        for what, key in (("spec", "spec_hash"), ("manifest", "manifest_hash"))
        + (("git", "git_revision"),)
        if attrs.get(key) is not None
    ]
    return [
        f"Corpus {attrs.get('corpus_name', 'ravdess')}{_labels_line(attrs)}.",
        (f"Kind {attrs['kind']}. " if attrs.get("kind") else "")
        + f"Objective: mean {metric}"
        + (f" over {folds} speaker folds" if folds else " over the folds")
        + "; trials: "
        + ", ".join(f"{v} {k.lower()}" for k, v in states.items())
        + ".",
        f"Provenance: {', '.join(prov)}." if prov else "Provenance: not recorded.",
    ]


def _labels_line(attrs: dict[str, Any]) -> str:
    labels = attrs.get("labels")
    if not labels:
        return ""
    return f", {len(labels)} labels: {', '.join(labels)}"


def make_report(
    storage_url: str,
    name: str,
    out: Path | None = None,
    top: int = 10,
    trial: int | None = None,
    fmt: str = "html",
    data: Path | None = None,
) -> list[Path]:
    """Write the report of study ``name`` into ``out`` as ``fmt`` (one of
    :data:`REPORT_FORMATS`; ``all``: every one); return the files a reader opens."""
    report, study, t = build_report(storage_url, name, trial, data, top)
    out = out or reports_dir() / name
    out.mkdir(parents=True, exist_ok=True)
    fmts = FORMATS if fmt == "all" else (fmt,)
    figures: list[tuple[str, str]] = []
    if {"html", "md"} & set(fmts):
        maximize = study.direction.name == "MAXIMIZE"
        figures = write_figures(study, t, report.metric, maximize, out, report.notes, top)
    return [WRITERS[f](report, out, figures) for f in fmts]


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def nested_prose(r: Report) -> str:
    """The best-of-N value and the nested estimate beside it (or the command for it): the
    sentence every command prints (``hpo.results.honest``)."""
    line = r.selection["statement"]
    return line[:1].upper() + line[1:] + "."


CSS = """body{font-family:system-ui,sans-serif;max-width:1360px;margin:1em auto;font-size:14px}
h1{margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .3em}p{margin:.3em 0}
.warn{color:#a00;font-weight:bold}.note{color:#555}
.lead{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:0 2em;
align-items:start}.row{display:flex;flex-wrap:wrap;gap:0 2em;align-items:flex-start}
table{border-collapse:collapse;margin:.2em 0 .8em}td,th{padding:1px 7px;text-align:right;
border-bottom:1px solid #e4e4e4}td:first-child,th:first-child{text-align:left;white-space:nowrap}
caption{caption-side:bottom;text-align:left;font-size:12px;color:#444;padding-top:3px}
figure{margin:1em 0}figcaption{font-size:13px;color:#333;max-width:60em}
img{max-width:100%}"""


def html_page(r: Report, out: Path, figures: list[tuple[str, str]]) -> str:
    """The page: the result first (scores, per label, confusion), then the details."""
    esc = html.escape
    t = r.tables
    synth = r.attrs.get("corpus_synthetic")
    warn = (
        "<p class=warn>SYNTHETIC corpus: these scores say nothing about real emotional speech.</p>"
        if synth
        else ""
    )

    def section(key: str, level: str = "h2") -> str:
        if key not in t:
            return ""
        return f'<section id="{key}"><{level}>{HEADINGS[key]}</{level}>{t[key].html()}</section>'

    figs = "".join(
        f'<figure><img alt="{esc(f)}" src="{_img(out / f"{f}.png")}">'
        f"<figcaption>{esc(cap)}</figcaption></figure>"
        for f, cap in figures
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hpo report: {esc(r.name)}</title>
<style>{CSS}</style></head><body>
<h1>Study {esc(r.name)}: trial #{r.summary.number}</h1>{warn}
{"".join(f"<p>{esc(m)}</p>" for m in r.meta[:2])}
{"".join(f"<p class=note>{esc(n)}</p>" for n in r.notes)}
<div class=lead><div>{section("results", "h3")}{section("per_label", "h3")}</div>
<div>{section("confusion", "h3")}{section("confusion_normalised", "h3")}</div></div>
<div class=row><div>{section("folds")}</div><div>{section("params")}</div></div>
<h2>Nested cross-validation</h2><p>{esc(nested_prose(r))}</p>{t["estimates"].html()}
{section("reruns")}
{warnings_html(r.checks)}
{section("top_trials")}{section("pruned_trials")}{section("best_per_choice")}
<h2>Figures</h2>{figs}
<p class=note>{esc(r.meta[2])}</p>
</body></html>
"""


def json_doc(r: Report) -> str:
    doc = {
        "study": r.name,
        "trial": r.summary.number,
        "metric": r.metric,
        "notes": r.notes,
        "efficiency": r.efficiency,
        "tables": {k: v.as_dict() for k, v in r.tables.items()},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(path: Path, text: str) -> Path:
    write_text_atomic(path, text)
    return path


def _write_html(r: Report, out: Path, figures: list[tuple[str, str]]) -> Path:
    return write(out / "index.html", html_page(r, out, figures))


def _write_md(r: Report, out: Path, figures: list[tuple[str, str]]) -> Path:
    """For a README: the tables, then the figures (the PNG files beside it)."""
    synth = "**SYNTHETIC corpus: these scores say nothing about real speech.**\n\n"
    parts = [
        f"# Study {r.name}: trial #{r.summary.number}\n\n",
        synth * bool(r.attrs.get("corpus_synthetic")),
    ]
    parts += [f"{m}\n\n" for m in r.meta] + [f"> {n}\n\n" for n in r.notes]
    for key, table in r.tables.items():
        prose = f"{nested_prose(r)}\n\n" if key == "estimates" else ""
        parts.append(f"## {HEADINGS[key]}\n\n{prose}{table.markdown()}\n")
    parts += [f"![{cap}]({name}.png)\n\n*{cap}*\n\n" for name, cap in figures]
    return write(out / "report.md", "".join(parts))


def _write_tex(r: Report, out: Path, figures: list[tuple[str, str]]) -> Path:
    """For a paper: every table as a booktabs ``table`` (needs ``\\usepackage{booktabs}``)."""
    head = (
        f"% hpo report: study {r.name}, trial #{r.summary.number}. "
        "Needs \\usepackage{booktabs}.\n"
    )
    notes = "".join(f"% {n}\n" for n in r.notes)
    body = "\n".join(f"% {HEADINGS[k]}\n{t.latex()}" for k, t in r.tables.items())
    return write(out / "report.tex", head + notes + "\n" + body)


def _write_csv(r: Report, out: Path, figures: list[tuple[str, str]]) -> Path:
    """For a spreadsheet: one CSV file per table, in ``out/csv``; returns the folder."""
    folder = out / "csv"
    folder.mkdir(exist_ok=True)
    for key, table in r.tables.items():
        write(folder / f"{key}.csv", table.csv())
    return folder


def _write_json(r: Report, out: Path, figures: list[tuple[str, str]]) -> Path:
    return write(out / "report.json", json_doc(r))


WRITERS = {
    "html": _write_html,
    "md": _write_md,
    "tex": _write_tex,
    "csv": _write_csv,
    "json": _write_json,
}
