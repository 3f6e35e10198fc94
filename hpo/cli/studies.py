"""``hpo run | status | export | report | dashboard``: studies and what they found."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hpo.cli.group import cli
from hpo.cli.options import (
    data_option,
    json_option,
    storage_option,
    study_file_option,
    study_name_option,
)
from hpo.errors import HpoError
from hpo.results.tables import params_text


@cli.command("run")
@study_file_option
@click.option(
    "--n-trials",
    type=click.IntRange(min=1),
    default=None,
    help="Total finished trials the study should end with (not an increment).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop starting trials after S seconds.",
)
@storage_option
@data_option
@click.option(
    "--model", default=None, help="w2v only: hub id, local path, or 'tiny' (random init, offline)."
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes on this machine sharing the storage.",
)
@click.option(
    "--devices",
    default=None,
    metavar="IDS",
    help="GPU ids, e.g. 0,1: worker i uses device i mod N (via CUDA_VISIBLE_DEVICES).",
)
@click.option(
    "--per-device",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Trials at once on each of --devices: K workers a GPU (one small model rarely "
    "fills a GPU).",
)
@click.option(
    "--allow-changed-spec",
    is_flag=True,
    help="Continue a study whose definition or corpus has changed.",
)
@click.option(
    "--warm-start",
    default=None,
    metavar="STUDY[:K]",
    help="Queue the K best complete trials (default 10) of STUDY, of another corpus too, as "
    "the first trials; a resumed run never queues them twice.",
)
@click.option(
    "--warm-start-storage",
    default=None,
    metavar="URL",
    help="Where the --warm-start study lives [default: --storage].",
)
def run(
    study: str,
    n_trials: int | None,
    timeout: float | None,
    storage: str,
    data: Path | None,
    model: str | None,
    jobs: int,
    devices: str | None,
    per_device: int | None,
    allow_changed_spec: bool,
    warm_start: str | None,
    warm_start_storage: str | None,
) -> None:
    """Run or resume a study until it has --n-trials finished trials."""
    from hpo.kinds import load_spec
    from hpo.study.run import run_study, spread_workers
    from hpo.study.warm import parse_warm_start

    spec = load_spec(study)
    if model is not None and not hasattr(spec.settings, "model"):
        raise HpoError(f"--model applies to w2v studies only; {spec.path} is a {spec.kind} study")
    spec = spec.with_overrides(corpus=data, model=model)
    ids = [d.strip() for d in devices.split(",") if d.strip()] if devices else None
    jobs, ids = spread_workers(jobs, ids, per_device)
    if warm_start_storage and not warm_start:
        raise HpoError("--warm-start-storage needs --warm-start STUDY[:K]")
    warm = parse_warm_start(warm_start, warm_start_storage) if warm_start else None
    r = run_study(
        spec,
        storage,
        n_trials=n_trials,
        timeout=timeout,
        jobs=jobs,
        allow_changed=allow_changed_spec,
        devices=ids,
        warm=warm,
    )
    if r.warm is not None:
        for line in r.warm.lines():
            click.echo(line)
    note = " on a SYNTHETIC corpus" if r.synthetic else ""
    click.echo(
        f"study '{r.study}'{note}: {r.finished} finished trials ({r.ran} new) in {r.storage}"
    )
    if r.best_value is not None:
        from hpo.results.honest import study_selection

        sel = study_selection(storage, r.study)
        if sel:
            click.echo(f"{sel['statement']}; params {params_text(r.best_params or {})}")


@cli.command("status")
@click.option("--study", default=None, metavar="NAME", help="Only this study.")
@storage_option
@json_option
def status(study: str | None, storage: str, as_json: bool) -> None:
    """Studies in the storage: trials by state, best value and params, per-fold scores."""
    from hpo.results.status import study_status

    rows = study_status(storage, study)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no studies in this storage")
    for r in rows:
        states = ", ".join(f"{v} {k.lower()}" for k, v in r["states"].items() if v)
        synth = " [SYNTHETIC corpus]" if r["synthetic_corpus"] else ""
        click.echo(
            f"{r['study']} ({r['kind']}, {r['direction']} {r['metric']}){synth}: "
            f"{r['trials']} trials: {states or 'none'}"
        )
        b = r["best"]
        if b:
            click.echo(f"  {b['selection']['statement']}")
            if b["speaker_norm"]:
                click.echo(f"    speaker norm: {b['speaker_norm']}")
            click.echo(f"    params: {params_text(b['params'])}")
            for m, vals in b["fold_scores"].items():
                if vals:
                    shown = " ".join("-" if v is None else f"{v:.3f}" for v in vals)
                    click.echo(f"    {m:>8} per fold: {shown}")
        if p := r["best_pruned"]:  # a partial mean, never shown as a CV mean
            click.echo(
                f"  best pruned: trial {p['number']} {r['metric']} {p['partial_mean']:.4f} "
                f"({p['label']}) {params_text(p['params'])}"
            )
        for w in r.get("warnings", []):  # the best at an edge of the space, or a plateau
            click.echo(f"  warning: {w['message']}")


@cli.command("export")
@study_name_option
@storage_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file [default: models/NAME-best.toml; env HPO_MODELS moves models/].",
)
@click.option(
    "--format", "fmt", type=click.Choice(["toml", "json"]), default="toml", show_default=True
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Also list the K best trials.",
)
def export(study: str, storage: str, out: Path | None, fmt: str, top: int) -> None:
    """Write the best configuration (params merged into the study's settings), its
    per-fold scores and provenance."""
    from hpo.results.export import export_best
    from hpo.results.honest import study_selection

    path = export_best(storage, study, out=out, fmt=fmt, top=top)
    sel = study_selection(storage, study)
    click.echo(f"wrote {path}" + (f": {sel['statement']}" if sel else ""))


@cli.command("report")
@study_name_option
@storage_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory [default: reports/NAME; env HPO_REPORTS moves reports/].",
)
@click.option(
    "--trial",
    "trial",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Report trial N (complete or pruned) instead of the best one.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "tex", "csv", "json", "all"]),
    default="html",
    show_default=True,
    help="html: index.html (figures embedded, works offline); md: report.md (+ PNGs); "
    "tex: report.tex (booktabs tables); csv: csv/TABLE.csv, one per table; json: "
    "report.json; all: every one into --out.",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="The study's prepared corpus on this machine, when not where the study ran "
    "(its clips' speakers give the bootstrap interval).",
)
def report(
    study: str,
    storage: str,
    out: Path | None,
    trial: int | None,
    fmt: str,
    data: Path | None,
) -> None:
    """The study's result, best trial first: accuracy, UAR and macro-F1 (mean ± std over
    folds, pooled, 95% interval from a bootstrap over speakers), per-label scores, the
    confusion matrix, chance levels, per-fold scores, parameters, the nested estimate, the
    top trials and captioned figures. Every format shows the same numbers."""
    from hpo.results.report import make_report

    for path in make_report(storage, study, out=out, trial=trial, fmt=fmt, data=data):
        click.echo(f"wrote {path}")


@cli.command("dashboard")
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--artifacts",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The figures' store. Default: the one the studies' workers wrote to.",
)
def dashboard(storage: str, host: str, port: int, artifacts: Path | None) -> None:
    """Serve optuna-dashboard on the storage: metric names, per-fold notes, figures."""
    from hpo.results.dashboard import serve

    serve(storage, host, port, artifacts)


@cli.command("nested")
@study_file_option
@click.option(
    "--inner-trials",
    type=click.IntRange(min=1),
    default=None,
    help="Trials of each inner search [default: the study's budget].",
)
@storage_option
@data_option
@json_option
def nested(
    study: str, inner_trials: int | None, storage: str, data: Path | None, as_json: bool
) -> None:
    """Nested speaker cross-validation: an honest estimate of what the search achieves.

    For each of the corpus's folds the whole search runs on the other speakers (inner
    studies NAME.nested-K, resumable, with the corpus's fold rule), and the configuration
    it picks is scored on the held-out speakers."""
    from hpo.kinds import load_spec
    from hpo.study.nested import run_nested

    spec = load_spec(study).with_overrides(corpus=data)
    r = run_nested(spec, storage, inner_trials)
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    m = r["metric"]
    synth = " (SYNTHETIC corpus)" if r["synthetic_corpus"] else ""
    click.echo(f"nested CV of '{r['study']}'{synth}, {r['inner_trials']} inner trials per fold:")
    click.echo(f"{'fold':>4}  {'held-out speakers':<17} {m:>8}  {'inner best':>10}  params")
    for o in r["outer"]:
        actors = ",".join(map(str, o["actors"]))
        click.echo(
            f"{o['fold']:>4}  {actors:<17} {o['score']:>8.4f}  {o['inner_value']:>10.4f}  "
            f"{params_text(o['params'])}"
        )
    click.echo(
        f"estimate: {m} {r['estimate']:.4f} ± {r['std']:.4f} (sample std over outer folds, ddof=1)"
    )
    if r["optimism"] is not None:
        click.echo(f"plain study's best: {r['plain_best']:.4f}; optimism {r['optimism']:+.4f}")


@cli.command("rerun")
@study_name_option
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="New seeds to train with, beside the trial's own (seed 0, retrained as a check).",
)
@click.option(
    "--trial",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Rerun complete trial N instead of the best one.",
)
@storage_option
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="The study's prepared corpus on this machine, when not where the study ran.",
)
@json_option
def rerun(
    study: str,
    seeds: int,
    trial: int | None,
    storage: str,
    data: Path | None,
    as_json: bool,
) -> None:
    """Train the chosen configuration (the best trial, or --trial N) again on every fold with
    --seeds new seeds; report mean ± 95% interval over seeds and folds.

    Seed 0 is the trial's own and should reproduce its fold scores; the summary is over the
    new seeds only (Student t-interval over their per-seed CV means, and mean ± sd over
    every seed × fold score). Stored on the study (shown by hpo report); a second run
    resumes and redoes no seed."""
    from hpo.study.rerun import run_rerun

    r = run_rerun(storage, study, seeds, trial, data)
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    for line in rerun_lines(r):
        click.echo(line)


def rerun_lines(r: dict) -> list[str]:
    """``hpo rerun``'s text: each seed's CV means, then the summary over the new seeds."""
    m = r["metric"]
    lines = [f"trial {r['trial']} ({params_text(r['params'])}), every fold per seed:"]
    lines += [
        f"  seed {s['index']} ({s['seed']}): "
        + ", ".join(f"{k} {v:.4f}" for k, v in s["cv_mean"].items())
        + (" (the trial's own seed)" if s["index"] == 0 else "")
        for s in r["seeds"]
    ]
    if r["original_reproduced"] is not None:
        lines.append(
            "seed 0 reproduced the trial's fold scores exactly"
            if r["original_reproduced"]
            else "WARNING: seed 0 did not reproduce the trial's fold scores (nondeterministic "
            "training, or code or corpus changed since the trial ran)"
        )
    if st := (r["stats"] or {}).get(m):
        ci = f", 95% CI [{st['ci'][0]:.4f}, {st['ci'][1]:.4f}]" if st["ci"] else ""
        sd = f" ± {st['sd_all']:.4f}" if st["sd_all"] is not None else ""
        lines.append(
            f"{m} over {st['seeds']} new seeds: mean {st['mean']:.4f}{ci} ({r['interval']}); "
            f"mean ± sd over all {st['scores']} seed × fold scores {st['mean_all']:.4f}{sd} "
            "(ddof=1)"
        )
    if r["identical"]:
        lines.append("every seed gave the same fold scores: training is deterministic here")
    return lines


def _trial_picks(values: tuple[str, ...]) -> dict[str, int]:
    """``--trial STUDY=N`` options as ``{STUDY: N}``."""
    picks: dict[str, int] = {}
    for v in values:
        name, sep, number = v.rpartition("=")
        if not sep or not name or not number.isdigit():
            raise click.BadParameter(f"'{v}' is not STUDY=N (a trial number)", param_hint="--trial")
        picks[name] = int(number)
    return picks


@cli.command("compare")
@click.argument("studies", nargs=-1, metavar="STUDY STUDY...")
@storage_option
@click.option(
    "--metric",
    type=click.Choice(["accuracy", "uar", "macro_f1"]),
    default=None,
    help="Compare on this metric's per-fold scores [default: the one the studies optimised].",
)
@click.option(
    "--trial",
    "trial_picks",
    multiple=True,
    metavar="STUDY=N",
    help="Compare trial N of STUDY instead of its best complete trial (repeatable).",
)
@click.option(
    "--all-pairs", is_flag=True, help="Test every pair, not each study against the first."
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="The prepared corpus the studies ran on, if it has moved since (McNemar reads its "
    "true labels) [default: the studies' recorded corpus path].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "tex", "csv", "json", "html"]),
    default="md",
    show_default=True,
    help="md: Markdown tables and verdicts; tex: booktabs tables (verdicts as comments); "
    "csv: one block per table; json: one object; html: tables and verdicts.",
)
def compare(
    studies: tuple[str, ...],
    storage: str,
    metric: str | None,
    trial_picks: tuple[str, ...],
    all_pairs: bool,
    data: Path | None,
    fmt: str,
) -> None:
    """Best trials of studies on the same corpus and folds, side by side: mean ± std, per-fold
    scores, exact Wilcoxon (over folds) and McNemar (over clips) tests, Holm-corrected for
    more than one pair, and a one-line verdict per pair that never says more than the
    numbers do."""
    from hpo.results.compare import compare_studies

    r = compare_studies(storage, studies, metric, _trial_picks(trial_picks), data, all_pairs)
    click.echo(r.render(fmt), nl=False)
