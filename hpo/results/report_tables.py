"""Every table of ``hpo report``, as :class:`~hpo.results.tables.Table` objects: the HTML
page, the Markdown, the LaTeX, the CSV files and the JSON all render these, so they show
the same numbers."""

from __future__ import annotations

from typing import Any

from hpo.results.summary import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    METRIC_NAMES,
    TrialSummary,
)
from hpo.results.tables import Best, MeanStd, Table, params_text, value_text
from hpo.trial.metrics import METRICS, CvValue, cv_value

DATA_DIGITS = 6  # in CSV and JSON: all a fold score carries (stored to 6 decimals)


def _table(columns: list[str], **kw: Any) -> Table:
    return Table(columns, data_digits=DATA_DIGITS, zeros=True, **kw)


def _what(s: TrialSummary, best: bool, n_complete: int) -> str:
    if s.partial:
        return f"Trial #{s.number} (pruned: the folds it ran only)"
    return f"Trial #{s.number}" + (f" (best of {n_complete} complete trials)" if best else "")


def results_table(s: TrialSummary, metric: str, best: bool, n_complete: int) -> Table:
    """The lead: each metric as mean ± std over folds, pooled, its 95% interval, chance."""
    n = len(s.folds)
    clips = int(s.confusion.sum()) if s.confusion is not None else None
    cap = (
        f"{_what(s, best, n_complete)}; the study's objective is {METRIC_NAMES.get(metric, metric)}"
        f". Mean ± std over its {n} speaker folds (sample std, ddof=1). Pooled: all "
        f"{clips if clips is not None else 'its'} validation clips scored at once."
    )
    if s.interval:
        cap += (
            f" 95% CI: percentile interval of the pooled value over {BOOTSTRAP_RESAMPLES} "
            f"bootstrap resamples of the {s.speakers} speakers (speakers drawn with replacement, "
            f"each with all its clips; seed {BOOTSTRAP_SEED})."
        )
    else:
        cap += " 95% CI: not available (see the note above the tables)."
    if s.chance:
        cap += (
            f" Chance: always predicting the majority class ({s.chance.majority_label}), "
            f"or guessing uniformly among the {len(s.labels)} labels (expected values)."
        )
    t = _table(
        ["metric", "mean ± std over folds", "pooled", "95% CI low", "95% CI high"]
        + ["majority class", "uniform guess"],
        caption=cap,
    )
    for m in METRICS:
        mean, std = s.fold_mean_std(m)
        lo, hi = s.interval[m] if s.interval else (None, None)
        cell = MeanStd(mean, std) if mean is not None else None
        t.add(
            METRIC_NAMES[m],
            Best(cell) if m == metric and cell is not None else cell,
            s.pooled[m] if s.pooled else None,
            lo,
            hi,
            s.chance.majority[m] if s.chance else None,
            s.chance.uniform[m] if s.chance else None,
        )
    return t


def per_label_table(s: TrialSummary) -> Table:
    t = _table(
        ["label", "clips", "recall", "precision", "F1"],
        caption=(
            f"Per label, trial #{s.number}, pooled over its folds (recall: share of the label's "
            "clips predicted as it; precision: share of the clips predicted as the label "
            "that are it)."
        ),
    )
    for row in s.per_label:
        t.add(*row)
    return t


def confusion_tables(s: TrialSummary) -> tuple[Table, Table]:
    """Counts, and each row divided by its total (the row's label's recall on the diagonal)."""
    cols = ["true \\ predicted", *s.labels]
    counts = _table(
        cols, caption=f"Confusion matrix of trial #{s.number}, summed over folds: clip counts."
    )
    norm = _table(
        cols,
        caption="The same, each row divided by its total: the diagonal is each label's recall.",
        digits=2,
    )
    for name, row in zip(s.labels, s.confusion, strict=True):
        total = int(row.sum())
        counts.add(name, *(int(x) for x in row))
        norm.add(name, *((float(x) / total if total else None) for x in row))
    return counts, norm


def folds_table(s: TrialSummary) -> Table:
    t = _table(
        ["fold", "validation speakers", "clips", *(METRIC_NAMES[m] for m in METRICS)],
        caption=f"Trial #{s.number} per fold: the speakers held out and the scores on them.",
    )
    for f in s.folds:
        t.add(
            f.index,
            ", ".join(map(str, f.speakers)),
            f.clips,
            *(f.scores[m] for m in METRICS),
        )
    return t


def params_table(number: int, params: dict[str, Any]) -> Table:
    """The trial's parameters (only those it has: a conditional one where it applies)."""
    t = _table(["parameter", "value"], caption=f"Parameters of trial #{number}.")
    for k, v in params.items():
        t.add(k, value_text(v))
    return t


def estimates_table(best: CvValue, selection: dict[str, Any], reran: bool = True) -> Table:
    """The best-of-N value beside the nested estimate: which one to report. ``selection``:
    ``hpo.results.honest.best_selection``'s, the words every command uses."""
    cap = (
        f"Best of N: the best trial's CV mean, the best of {selection['best_of']} complete "
        "trials on the folds that selected it, so optimistic."
    )
    n = selection["nested"]
    if n:
        cap += (
            " Nested CV: each outer fold's pick scored on speakers its search never saw, the "
            "honest one to report (± sample std over outer folds, ddof=1)."
        )
        if selection["nested_command"]:
            cap += f" Not every outer fold is done: {selection['nested_command']} completes it."
    elif selection["nested_command"]:
        cap += f" No nested estimate yet: {selection['nested_command']} computes the honest one."
    if not reran:
        cap += (
            f" Seeds: not re-run yet (hpo rerun --study {selection['study']} --seeds 5 trains "
            "the pick again with new seeds)."
        )
    t = _table(["estimate", "value", "over"], caption=cap)
    t.add(
        f"best of {selection['best_of']} (trial #{best.number}), optimistic", best.value, best.label
    )
    if n:
        over = f"{n['folds']} of {n['of_folds']}" if n["of_folds"] else f"{n['folds']}"
        t.add("nested CV (honest)", MeanStd(n["estimate"], n["std"]), f"{over} outer folds")
    return t


def reruns_table(reruns: list[dict[str, Any]]) -> Table:
    """``hpo rerun``'s results: per rerun trial and metric, the new seeds' mean, its 95%
    t-interval, mean ± sd over every seed × fold score, and the trial's own seed."""
    cap = (
        "The chosen configuration trained again on every fold with new seeds (hpo rerun). "
        "Mean over seeds: the mean of the new seeds' CV means; 95% CI: Student t-interval over "
        "those per-seed means (seed-to-seed variation of the CV mean on these folds, not an "
        "interval over new speakers); mean ± sd: over every new seed × fold score (sample "
        "sd, ddof=1, folds and seeds mixed). Seed 0 is the trial's own, left out of the "
        "summary (the search selected on it); 'reproduced': its retraining gave the trial's "
        "fold scores exactly."
    )
    if any(r["identical"] for r in reruns):
        cap += " Identical seeds: every seed gave the same fold scores (deterministic training)."
    t = _table(
        ["trial", "metric", "new seeds", "mean over seeds", "95% CI low", "95% CI high"]
        + ["mean ± sd over seed × fold", "seed 0 (own)", "reproduced", "identical seeds"],
        caption=cap,
    )
    for r in reruns:
        own = next((s["cv_mean"] for s in r["seeds"] if s["index"] == 0), None)
        for m in METRICS:
            st = (r["stats"] or {}).get(m)
            lo, hi = st["ci"] if st and st["ci"] else (None, None)
            t.add(
                f"#{r['trial']}",
                METRIC_NAMES[m],
                st["seeds"] if st else 0,
                st["mean"] if st else None,
                lo,
                hi,
                MeanStd(st["mean_all"], st["sd_all"]) if st else None,
                own[m] if own else None,
                _yes(r["original_reproduced"]),
                _yes(r["identical"]),
            )
    return t


def _yes(v: bool | None) -> str | None:
    return None if v is None else ("yes" if v else "no")


def trials_tables(finished: list, metric: str, maximize: bool, top: int) -> list[Table]:
    """The top complete trials (CV means), then the top pruned ones (partial means), each
    value labelled with the folds it averages over."""
    values = [(cv_value(t, metric), t.params) for t in finished]
    out = []
    for partial, cap in (
        (False, f"Top complete trials by CV mean {metric}."),
        (
            True,
            "Pruned trials, highest partial means: a pruned trial ran only some folds; its "
            "partial mean is over those, no CV mean to rank with the complete trials.",
        ),
    ):
        rows = [(v, p) for v, p in values if v.partial == partial and v.value is not None]
        if partial and not rows:
            continue
        rows.sort(key=lambda r: -r[0].value if maximize else r[0].value)
        t = _table(["trial", metric, "averaged over", "parameters"], caption=cap, digits=4)
        for i, (v, p) in enumerate(rows[:top]):
            t.add(
                f"#{v.number}",
                Best(v.value) if i == 0 and not partial else v.value,
                v.label,
                params_text(p),
            )
        out.append(t)
    return out


def best_by_choice_table(complete: list, maximize: bool) -> Table | None:
    """Per categorical parameter, each choice's best value: what each choice can reach."""
    from optuna.distributions import CategoricalDistribution

    t = _table(
        ["parameter", "choice", "best", "complete trials"],
        caption="Each choice of each categorical parameter: its best CV mean and trial count.",
        digits=4,
    )
    dists = {k: d for tr in complete for k, d in tr.distributions.items()}
    for param, dist in dists.items():
        if not isinstance(dist, CategoricalDistribution):
            continue
        for choice in dist.choices:
            vals = [tr.value for tr in complete if tr.params.get(param) == choice]
            best = (max if maximize else min)(vals) if vals else None
            t.add(param, value_text(choice), best, len(vals))
    return t if t.rows else None
