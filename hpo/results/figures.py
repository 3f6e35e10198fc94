"""``hpo report``: PNG figures and one self-contained HTML page for a study."""

from __future__ import annotations

import base64
import html
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import TrialState

from hpo.config.paths import reports_dir
from hpo.errors import HpoError
from hpo.results.edges import space_checks, warnings_html
from hpo.study.storage import load_study, open_storage
from hpo.trial.metrics import CvValue, cv_value
from hpo.trial.notes import confusion_figure
from hpo.util.io import atomic_path, write_text_atomic

FIGURES = ("history", "importances", "parallel", "fold_spread", "confusion")


def _pyplot():
    """matplotlib's pyplot, drawing to files only (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Write ``fig`` as a PNG (atomically) and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def make_report(storage_url: str, name: str, out: Path | None = None, top: int = 10) -> Path:
    """Write ``history.png``, ``importances.png``, ``parallel.png``, ``fold_spread.png``,
    ``confusion.png`` and ``index.html`` (images embedded) to ``out``; return the HTML path."""
    study = load_study(open_storage(storage_url, create=False), name)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise HpoError(f"study '{name}' has no complete trial yet; nothing to report")
    out = out or reports_dir() / name
    out.mkdir(parents=True, exist_ok=True)
    metric = study.user_attrs.get("metric", "value")
    maximize = study.direction.name == "MAXIMIZE"
    ranked = sorted(complete, key=lambda t: t.value, reverse=maximize)[:top]
    bt = study.best_trial
    notes: list[str] = []

    _save(history_figure(study, metric, maximize), out / "history.png")
    _save(_importances_figure(study, complete, notes), out / "importances.png")
    _save(_parallel_figure(study), out / "parallel.png")
    _save(_fold_spread_figure(ranked, metric), out / "fold_spread.png")
    # Confusion matrix of the best trial, summed over its validation folds; its classes are
    # named by the study's label set (the corpus's, recorded at creation).
    (out / "confusion.png").unlink(missing_ok=True)
    if bt.user_attrs.get("confusion") is not None:
        cm = np.array(bt.user_attrs["confusion"])
        title = f"best trial #{bt.number}, all folds"
        _save(confusion_figure(cm, title, study.user_attrs.get("labels")), out / "confusion.png")
    (out / "layer_weights.png").unlink(missing_ok=True)  # none from an earlier report
    if bt.user_attrs.get("layer_weights"):
        _save(_layer_weights_figure(bt), out / "layer_weights.png")

    extra = _best_by_choice(study, complete, maximize) + _nested_line(storage_url, name, bt.value)
    extra += warnings_html(space_checks(complete, bt, metric))  # edge and plateau warnings
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    table = trials_table(finished, metric, maximize, top)
    write_text_atomic(out / "index.html", _html(study, name, metric, bt, table, out, notes, extra))
    return out / "index.html"


def history_figure(study: Any, metric: str, maximize: bool):
    """Every finished trial, and the best so far, as three series: complete trials' CV means,
    pruned trials' partial means (over the folds each ran), the best CV mean so far.

    Drawn here, not with Optuna's plot, which leaves out PRUNED trials (most trials of a
    pruned study); and not from a pruned trial's Optuna value, its last report (one fold's
    score under the Wilcoxon pruner), which is no mean of anything.
    """
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    values = finished_values(study, metric)
    complete = [v for v in values if not v.partial]
    pruned = [v for v in values if v.partial and v.value is not None]
    n = max((v.folds or 0 for v in complete), default=0)
    series = (
        (complete, "tab:blue", "o", "complete: CV mean" + (f" over {n} folds" if n else "")),
        (pruned, "tab:gray", "x", "pruned: partial mean over the folds it ran"),
    )
    for vs, color, marker, label in series:
        xy = np.array([(v.number, v.value) for v in vs], dtype=float).reshape(-1, 2)
        ax.scatter(xy[:, 0], xy[:, 1], s=14, color=color, marker=marker, label=label)
    best, xs, ys = None, [], []
    for v in complete:
        if best is None or (v.value > best if maximize else v.value < best):
            best = v.value
        xs.append(v.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="tab:red", label="best CV mean so far")
    name = study.study_name
    ax.set(
        xlabel="trial", ylabel=f"{metric} (mean over folds)", title=f"{name}: optimisation history"
    )
    ax.legend()
    return fig


def finished_values(study: Any, metric: str) -> list[CvValue]:
    """The complete and pruned trials' values, by trial number (see ``CvValue``)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return [cv_value(t, metric) for t in sorted(done, key=lambda t: t.number)]


def _importances_figure(study: Any, complete: list, notes: list[str]):
    """Parameter importances (fANOVA, Optuna's own plot), where there is enough to fit it;
    why not, in ``notes``."""
    if len(complete) >= 2:
        try:
            import optuna
            from optuna.visualization.matplotlib import plot_param_importances

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
                fig = plot_param_importances(study, evaluator=evaluator).figure
            fig.set_size_inches(6, 3.5)
            return fig
        except (RuntimeError, ValueError) as e:
            notes.append(f"parameter importances unavailable: {e}")
    fig, ax = _pyplot().subplots(figsize=(6, 3.5))
    ax.text(0.5, 0.5, "not enough complete trials", ha="center", va="center")
    ax.set_axis_off()
    return fig


def _parallel_figure(study: Any):
    """Parallel coordinates (Optuna's own plot)."""
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ax = plot_parallel_coordinate(study)
    fig = ax.figure if hasattr(ax, "figure") else ax[0].figure
    fig.set_size_inches(8, 4)
    return fig


def _fold_spread_figure(ranked: list, metric: str):
    """Per-fold spread of the top trials."""
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    data = [[v for v in t.user_attrs.get(f"fold_{metric}", []) if v is not None] for t in ranked]
    ax.boxplot(data, tick_labels=[f"#{t.number}" for t in ranked])
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i), d, s=10, color="tab:orange", zorder=3)
    ax.set(
        xlabel="trial (best first)",
        ylabel=f"{metric} per actor fold",
        title=f"per-fold spread of the top {len(ranked)} trials",
    )
    return fig


def _layer_weights_figure(bt: Any):
    """The layer mix a layer_weighted pooling learned (best trial, mean over its folds)."""
    w = np.mean(list(bt.user_attrs["layer_weights"].values()), axis=0)
    fig, ax = _pyplot().subplots(figsize=(7, 3.5))
    ax.bar(range(len(w)), w, color="tab:blue")
    ax.set(
        xlabel="layer (0: transformer input)",
        ylabel="softmax weight",
        title=f"learned layer weights, best trial #{bt.number}",
    )
    return fig


def trials_table(finished: list, metric: str, maximize: bool, top: int) -> str:
    """The top complete trials (CV means), then the top pruned ones (partial means) under a
    heading of their own, each value labelled with the folds it averages over."""
    values = [(cv_value(t, metric), t.params) for t in finished]
    complete = [(v, p) for v, p in values if not v.partial]
    pruned = [(v, p) for v, p in values if v.partial and v.value is not None]
    head = (
        f"<tr><th>trial</th><th>{html.escape(metric)}</th><th>averaged over</th>"
        "<th>params</th></tr>"
    )

    def table(rows: list[tuple[CvValue, dict]]) -> str:
        rows = sorted(rows, key=lambda r: -r[0].value if maximize else r[0].value)[:top]
        return (
            f"<table>{head}"
            + "".join(
                f"<tr><td>#{v.number}</td><td>{v.value:.4f}</td><td>{html.escape(v.label)}</td>"
                f"<td>{html.escape(str(p))}</td></tr>"
                for v, p in rows
            )
            + "</table>"
        )

    out = f"<h2>Top complete trials</h2>{table(complete)}"
    if pruned:
        out += (
            "<h2>Pruned trials, highest partial means</h2><p>A pruned trial ran only some "
            "folds: its partial mean is over those, no CV mean to rank with the ones above."
            f"</p>{table(pruned)}"
        )
    return out


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _best_by_choice(study: Any, complete: list, maximize: bool) -> str:
    """Per categorical parameter (feature set, speaker_norm, pooling, ...): each choice's
    best value, so a reader sees what each choice can reach, not only the winner."""
    from optuna.distributions import CategoricalDistribution

    rows = []
    dists = {k: d for t in complete for k, d in t.distributions.items()}
    for param, dist in dists.items():
        if not isinstance(dist, CategoricalDistribution):
            continue
        for choice in dist.choices:
            vals = [t.value for t in complete if t.params.get(param) == choice]
            best = (max if maximize else min)(vals) if vals else None
            shown = "-" if best is None else f"{best:.4f}"
            rows.append(
                f"<tr><td>{html.escape(param)}</td><td>{html.escape(str(choice))}</td>"
                f"<td>{shown}</td><td>{len(vals)}</td></tr>"
            )
    if not rows:
        return ""
    return (
        "<h2>Best value per choice</h2><table><tr><th>parameter</th><th>choice</th>"
        "<th>best</th><th>complete trials</th></tr>" + "".join(rows) + "</table>"
    )


def _nested_line(storage_url: str, name: str, plain: float) -> str:
    from hpo.study.nested import nested_summary

    n = nested_summary(storage_url, name)
    if n is None:
        return "<p>No nested estimate yet (<code>hpo nested --study NAME</code>).</p>"
    return (
        f"<h2>Nested cross-validation</h2><p>Estimate {n['estimate']:.4f} ± {n['std']:.4f} "
        f"over {n['folds']} outer folds, beside the plain study's best {plain:.4f} "
        f"(optimism {plain - n['estimate']:+.4f}).</p>"
    )


def _labels_line(attrs: dict[str, Any]) -> str:
    labels = attrs.get("labels")
    if not labels:
        return ""
    return f", {len(labels)} labels: {html.escape(', '.join(labels))}"


def _html(
    study: Any,
    name: str,
    metric: str,
    bt: Any,
    table: str,
    out: Path,
    notes: list[str],
    extra: str = "",
) -> str:
    attrs = study.user_attrs
    synth = attrs.get("corpus_synthetic")
    warn = (
        "<p class=warn>SYNTHETIC corpus: these scores say nothing about real emotional speech.</p>"
        if synth
        else ""
    )
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    figs = "".join(
        f'<figure><img alt="{f}" src="{_img(out / f"{f}.png")}"><figcaption>{f}</figcaption>'
        "</figure>"
        for f in (*FIGURES, "layer_weights")
        if (out / f"{f}.png").is_file()
    )
    esc = html.escape
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hpo report: {esc(name)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
img{{max-width:100%}}.warn{{color:#a00;font-weight:bold}}
td,th{{padding:2px 8px;text-align:left}}</style></head><body>
<h1>Study {esc(name)}</h1>{warn}
<p>Corpus {esc(str(attrs.get("corpus_name", "ravdess")))}{_labels_line(attrs)}.</p>
<p>kind {esc(str(attrs.get("kind")))}, metric: mean {esc(metric)} over
{len(attrs.get("fold_actors", {}))} actor folds; trials:
{esc(", ".join(f"{v} {k.lower()}" for k, v in states.items()))}.</p>
<p>Best: trial #{bt.number}, {esc(metric)} {bt.value:.4f}, {esc(str(bt.params))}.</p>
<p>Provenance: spec {esc(str(attrs.get("spec_hash")))}, manifest
{esc(str(attrs.get("manifest_hash")))}, git {esc(str(attrs.get("git_revision")))}.</p>
{"".join(f"<p>{esc(n)}</p>" for n in notes)}
{table}
{extra}
{figs}
</body></html>
"""
