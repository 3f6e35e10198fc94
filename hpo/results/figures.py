"""``hpo report``'s figures, each a PNG with the caption the page and the Markdown show."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import TrialState

from hpo.results.efficiency import efficiency_sentence, search_efficiency, time_unit
from hpo.trial.metrics import CvValue, cv_value
from hpo.trial.notes import confusion_figure
from hpo.util.io import atomic_path

FIGURES = ("history", "importances", "params", "fold_spread", "confusion")


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


def history_figure(study: Any, metric: str, maximize: bool):
    """The search's history, in two panels: against trial number (left) and against search
    time (right, ``hpo.results.efficiency``). Each shows three series: complete trials' CV
    means, pruned trials' partial means (over the folds each ran), the best CV mean so far.

    Drawn here, not with Optuna's plot, which leaves out PRUNED trials (most trials of a
    pruned study) and has no time axis; and not from a pruned trial's Optuna value, its
    last report (one fold's score under the Wilcoxon pruner), which is no mean of anything.
    """
    fig, (ax, tax) = _pyplot().subplots(1, 2, figsize=(12, 4), sharey=True)
    eff = search_efficiency(study.get_trials(deepcopy=False), metric, maximize)
    n = max((v.folds or 0 for v in finished_values(study, metric) if not v.partial), default=0)
    div, unit = time_unit(eff.total_seconds)
    labels = (
        "complete: CV mean" + (f" over {n} folds" if n else ""),
        "pruned: partial mean over the folds it ran",
    )
    for axis, x in ((ax, lambda p: p.number), (tax, lambda p: p.seconds / div)):
        for pruned, color, marker, label in (
            (False, "tab:blue", "o", labels[0]),
            (True, "tab:gray", "x", labels[1]),
        ):
            pts = [p for p in eff.by_trial if p.pruned == pruned and p.value is not None]
            xy = np.array([(x(p), p.value) for p in pts], dtype=float).reshape(-1, 2)
            axis.scatter(xy[:, 0], xy[:, 1], s=14, color=color, marker=marker, label=label)
    best = "best CV mean so far"
    ax.step(*_xy(eff.best_by_trial), where="post", color="tab:red", label=best)
    tax.step(*_xy(eff.best_by_time, div), where="post", color="tab:red", label=best)
    name = study.study_name
    ax.set(
        xlabel="trial", ylabel=f"{metric} (mean over folds)", title=f"{name}: optimisation history"
    )
    tax.set(
        xlabel=f"search time ({unit}; idle time between runs left out)",
        title=f"{name}: best so far against time",
    )
    ax.legend()
    return fig


def _xy(pairs: list[tuple[float, float]], div: float = 1.0) -> tuple[list[float], list[float]]:
    return [x / div for x, _ in pairs], [y for _, y in pairs]


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


def _fold_spread_figure(ranked: list, metric: str):
    """Per-fold spread of the top trials."""
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    data = [[v for v in t.user_attrs.get(f"fold_{metric}", []) if v is not None] for t in ranked]
    ax.boxplot(data, tick_labels=[f"#{t.number}" for t in ranked])
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i), d, s=10, color="tab:orange", zorder=3)
    ax.set(
        xlabel="trial (best first)",
        ylabel=f"{metric} per speaker fold",
        title=f"per-fold spread of the top {len(ranked)} trials",
    )
    return fig


def _layer_weights_figure(bt: Any):
    """The learned layer mix (probe_layer = "weighted") of the best trial, mean over folds."""
    w = np.mean(list(bt.user_attrs["layer_weights"].values()), axis=0)
    fig, ax = _pyplot().subplots(figsize=(7, 3.5))
    ax.bar(range(len(w)), w, color="tab:blue")
    ax.set(
        xlabel="layer (0: transformer input)",
        ylabel="softmax weight",
        title=f"learned layer weights, best trial #{bt.number}",
    )
    return fig


def _params_figure(study: Any, metric: str):
    """One small panel per parameter: each finished trial's value against the parameter's
    value (log axis for a log-scaled range, one column per choice for a categorical one).
    Instead of a parallel-coordinate plot, whose axis labels overlap with more than a few
    parameters; a trial only appears in the panels of the parameters it has."""
    from optuna.distributions import CategoricalDistribution

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    values = {v.number: v for v in (cv_value(t, metric) for t in done)}
    dists = {k: d for t in done for k, d in t.distributions.items()}
    cols = min(3, max(len(dists), 1))
    rows = max(1, math.ceil(len(dists) / cols))
    fig, axes = _pyplot().subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.ravel()[len(dists) :]:
        ax.set_axis_off()
    for ax, (name, dist) in zip(axes.ravel(), dists.items(), strict=False):
        choices = dist.choices if isinstance(dist, CategoricalDistribution) else None
        for partial, color, marker in ((False, "tab:blue", "o"), (True, "tab:gray", "x")):
            pts = [
                (t.params[name], values[t.number].value)
                for t in done
                if name in t.params
                and values[t.number].partial == partial
                and values[t.number].value is not None
            ]
            if not pts:
                continue
            x = [choices.index(p) if choices else p for p, _ in pts]
            ax.scatter(x, [v for _, v in pts], s=12, color=color, marker=marker)
        if choices:
            ax.set_xticks(range(len(choices)), [str(c)[:12] for c in choices], rotation=30)
        elif getattr(dist, "log", False):
            ax.set_xscale("log")
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=8)
    axes[0, 0].set_ylabel(metric)
    fig.tight_layout()
    return fig


def write_figures(
    study: Any, trial: Any, metric: str, maximize: bool, out: Path, notes: list[str], top: int
) -> list[tuple[str, str]]:
    """Draw every figure into ``out`` as PNG (the confusion matrix and layer mix of
    ``trial``); return (name, caption) of each written."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ranked = sorted(complete, key=lambda t: t.value, reverse=maximize)[:top]
    done = [
        (
            "history",
            history_figure(study, metric, maximize),
            f"Optimisation history, against trials (left) and search time (right): each "
            f"complete trial's CV mean {metric} (blue), each pruned trial's partial mean over "
            "the folds it ran (grey crosses), and the best CV mean so far (red). "
            + efficiency_sentence(
                search_efficiency(study.get_trials(deepcopy=False), metric, maximize), metric
            ),
        ),
        (
            "importances",
            _importances_figure(study, complete, notes),
            "Parameter importances (fANOVA over the complete trials): the share of the variance "
            f"of {metric} each parameter explains.",
        ),
        (
            "params",
            _params_figure(study, metric),
            f"{metric} against each parameter: complete trials (blue dots) and pruned trials' "
            "partial means (grey crosses); a trial appears only where the parameter applies.",
        ),
        (
            "fold_spread",
            _fold_spread_figure(ranked, metric),
            f"Spread of {metric} over the speaker folds of the top {len(ranked)} trials "
            "(box: quartiles; dots: single folds).",
        ),
    ]
    for stale in ("confusion", "layer_weights", "parallel"):  # none from an earlier report
        (out / f"{stale}.png").unlink(missing_ok=True)
    done += _trial_figures(trial, study.user_attrs.get("labels"))
    for name, fig, _ in done:
        _save(fig, out / f"{name}.png")
    return [(name, caption) for name, _, caption in done]


def _trial_figures(trial: Any, labels: Any) -> list[tuple[str, Any, str]]:
    """The reported trial's own figures: its confusion matrix, its learned layer mix."""
    out: list[tuple[str, Any, str]] = []
    if trial.user_attrs.get("confusion") is not None:
        cm = np.array(trial.user_attrs["confusion"])
        title = f"trial #{trial.number}, all folds"
        out.append(
            (
                "confusion",
                confusion_figure(cm, title, labels),
                f"Confusion matrix of trial #{trial.number} summed over its folds: rows "
                "are the true labels, columns the predicted ones (clip counts).",
            )
        )
    if trial.user_attrs.get("layer_weights"):
        out.append(
            (
                "layer_weights",
                _layer_weights_figure(trial),
                f"The layer mix trial #{trial.number}'s layer-weighted pooling learned "
                "(softmax weight per layer, mean over its folds).",
            )
        )
    return out
