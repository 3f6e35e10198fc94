"""The ``hpo`` command tree: each command parses its input and calls one library function.

Library modules are imported inside the commands so ``hpo --help`` starts fast and the
SVM path never imports torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hpo.errors import HpoError


class _Group(click.Group):
    """Turns known errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except HpoError as e:
            click.echo(f"hpo: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "hpo: interrupted; finished trials are saved and an interrupted trial is "
                "queued again: run the same command to resume",
                err=True,
            )
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hpo")
def cli() -> None:
    """Bayesian hyperparameter search for speech emotion recognition on RAVDESS.

    Studies are TOML files in studies/; every trial is scored by actor-independent
    cross-validation and stored in SQLite (or PostgreSQL) so it can be resumed,
    browsed and exported.
    """


@cli.group(cls=_Group)
def data() -> None:
    """Prepare, inspect or synthesize a corpus."""


@data.command("prepare")
@click.argument("src", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("data/ravdess"),
    show_default=True,
    help="Corpus directory to write.",
)
@click.option(
    "--folds",
    "n_folds",
    type=int,
    default=6,
    show_default=True,
    help="Number of actor folds to assign.",
)
@click.option("--jobs", type=int, default=None, help="Worker processes (default: all cores).")
def data_prepare(src: Path, out: Path, n_folds: int, jobs: int | None) -> None:
    """Prepare SRC (Audio_Speech_Actors_01-24.zip or its folder): 16 kHz mono clips,
    a manifest and speaker-independent folds."""
    from hpo.corpus.prepare import prepare

    r = prepare(src, out, n_folds=n_folds, jobs=jobs)
    kind = " (SYNTHETIC corpus)" if r.synthetic else ""
    click.echo(
        f"prepared {len(r.clips)} clips from {len({c.actor for c in r.clips})} actors "
        f"into {r.out}{kind}: {r.written} written, {r.reused} unchanged"
    )
    for fold, actors in r.fold_members.items():
        click.echo(f"  fold {fold}: actors {', '.join(str(a) for a in actors)}")
    if r.rejected:
        click.echo(f"rejected {len(r.rejected)} input(s):")
        for rej in r.rejected:
            click.echo(f"  {rej['file']}: {rej['reason']}")


@data.command("info")
@click.argument("corpus_dir", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def data_info(corpus_dir: Path, as_json: bool) -> None:
    """Describe a prepared corpus: clips, actors, emotions, folds, rejected inputs."""
    from hpo.corpus.info import corpus_info

    info = corpus_info(corpus_dir)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    kind = "SYNTHETIC corpus (not real speech)" if info["synthetic"] else "corpus"
    click.echo(
        f"{kind} {info['path']}: {info['clips']} clips, {info['actors']} actors, "
        f"{info['sample_rate']} Hz, {info['channels']} channel(s), {info['hours']} h"
    )
    click.echo("emotions: " + ", ".join(f"{k} {v}" for k, v in info["emotions"].items()))
    for fold, actors in info["folds"].items():
        click.echo(f"fold {fold}: actors {', '.join(map(str, actors))}")
    click.echo(f"rejected at preparation: {len(info['rejected'])}")
    for rej in info["rejected"]:
        click.echo(f"  {rej['file']}: {rej['reason']}")


@data.command("synth")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("data/synthetic-src"),
    show_default=True,
    help="Where to write the Actor_XX/ folders.",
)
@click.option("--actors", type=int, default=24, show_default=True)
@click.option("--clips-per-actor", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=int, default=None, help="Worker processes (default: all cores).")
def data_synth(out: Path, actors: int, clips_per_actor: int, seed: int, jobs: int | None) -> None:
    """Write a SYNTHETIC corpus in the RAVDESS layout (48 kHz, same file names).

    For offline demos and tests only: results on it say nothing about real speech."""
    from hpo.corpus.synth import synthesize

    r = synthesize(out, actors=actors, clips_per_actor=clips_per_actor, seed=seed, jobs=jobs)
    click.echo(
        f"wrote {r.clips} synthetic clips ({r.actors} actors, {r.sample_rate} Hz) "
        f"to {r.out}; prepare them with: hpo data prepare {r.out}"
    )


def storage_option(f):
    return click.option(
        "--storage",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL or .db path [default: sqlite:///studies/hpo.db, or $HPO_STORAGE].",
    )(f)


def study_name_option(f):
    return click.option(
        "--study",
        required=True,
        metavar="NAME",
        help="Name of a study in the storage (hpo status lists them).",
    )(f)


def _storage(url: str | None) -> str:
    import os

    from hpo.storage import DEFAULT_STORAGE

    return url or os.environ.get("HPO_STORAGE") or DEFAULT_STORAGE


@cli.command("run")
@click.option(
    "--study",
    "study",
    required=True,
    metavar="NAME",
    help="Study file: NAME for studies/NAME.toml, or a path to a .toml file.",
)
@click.option(
    "--n-trials",
    type=int,
    default=None,
    help="Total finished trials the study should end with (not an increment).",
)
@click.option("--timeout", type=float, default=None, help="Stop starting trials after S seconds.")
@storage_option
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Prepared corpus directory (overrides the study file).",
)
@click.option(
    "--model", default=None, help="w2v only: hub id, local path, or 'tiny' (random init, offline)."
)
@click.option(
    "--jobs",
    type=int,
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
    "--allow-changed-spec",
    is_flag=True,
    help="Continue a study whose definition or corpus has changed.",
)
def run(
    study: str,
    n_trials: int | None,
    timeout: float | None,
    storage: str | None,
    data: Path | None,
    model: str | None,
    jobs: int,
    devices: str | None,
    allow_changed_spec: bool,
) -> None:
    """Run or resume a study until it has --n-trials finished trials."""
    from hpo.runner import run_study
    from hpo.spec import load_spec

    spec = load_spec(study)
    if model is not None and spec.kind != "w2v":
        raise HpoError(f"--model applies to w2v studies only; {spec.path} is a {spec.kind} study")
    spec = spec.with_overrides(corpus=data, model=model)
    r = run_study(
        spec,
        _storage(storage),
        n_trials=n_trials,
        timeout=timeout,
        jobs=jobs,
        allow_changed=allow_changed_spec,
        devices=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
    )
    note = " on a SYNTHETIC corpus" if r.synthetic else ""
    click.echo(
        f"study '{r.study}'{note}: {r.finished} finished trials ({r.ran} new) in {r.storage}"
    )
    if r.best_value is not None:
        click.echo(f"best {spec.objective.metric}: {r.best_value:.4f} with {r.best_params}")


@cli.command("status")
@click.option("--study", default=None, metavar="NAME", help="Only this study.")
@storage_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(study: str | None, storage: str | None, as_json: bool) -> None:
    """Studies in the storage: trials by state, best value and params, per-fold scores."""
    from hpo.status import study_status

    rows = study_status(_storage(storage), study)
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
            click.echo(f"  best: trial {b['number']} {r['metric']} {b['value']:.4f} {b['params']}")
            for m, vals in b["fold_scores"].items():
                if vals:
                    shown = " ".join("-" if v is None else f"{v:.3f}" for v in vals)
                    click.echo(f"    {m:>8} per fold: {shown}")


@cli.command("export")
@study_name_option
@storage_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file [default: models/NAME-best.toml].",
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
def export(study: str, storage: str | None, out: Path | None, fmt: str, top: int) -> None:
    """Write the best configuration (params merged into the study's settings), its
    per-fold scores and provenance."""
    from hpo.export import export_best

    path = export_best(_storage(storage), study, out=out, fmt=fmt, top=top)
    click.echo(f"wrote {path}")


@cli.command("report")
@study_name_option
@storage_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory [default: reports/NAME].",
)
def report(study: str, storage: str | None, out: Path | None) -> None:
    """Figures (history, importances, parallel coordinates, per-fold spread, confusion
    matrix) as PNG files plus one self-contained HTML page."""
    from hpo.report import make_report

    path = make_report(_storage(storage), study, out=out)
    click.echo(f"wrote {path}")


@cli.command("dashboard")
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
def dashboard(storage: str | None, host: str, port: int) -> None:
    """Serve optuna-dashboard on the storage (per-fold scores are trial user attributes)."""
    from hpo.dashboard import serve

    serve(_storage(storage), host, port)


@cli.command("train")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="An exported configuration (hpo export), e.g. models/w2v-best.toml.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Model directory [default: models/STUDY].",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Prepared corpus (default: the one the study used).",
)
def train(config_path: Path, out: Path | None, data: Path | None) -> None:
    """Train an exported configuration on all actors and save it."""
    from hpo.progress import TrialReporter
    from hpo.train import train_from_export

    with TrialReporter(1, 0, "accuracy") as reporter:
        path = train_from_export(config_path, out=out, data=data, reporter=reporter)
    click.echo(f"saved model to {path}")


@cli.command("predict")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A directory written by hpo train.",
)
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predict(model_dir: Path, clips: tuple[Path, ...], as_json: bool) -> None:
    """Print per-emotion probabilities for each CLIP (any wav; resampled to 16 kHz)."""
    from hpo.predict import predict as run_predict

    r = run_predict(model_dir, list(clips))
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    if r["random_init_model"]:
        click.echo("note: this model was fine-tuned from a RANDOMLY INITIALISED backbone")
    if r["synthetic_training_corpus"]:
        click.echo("note: this model was trained on a SYNTHETIC corpus")
    for clip, probs in r["predictions"].items():
        best = max(range(len(probs)), key=probs.__getitem__)
        click.echo(f"{clip}: {r['labels'][best]} ({probs[best]:.2f})")
        click.echo(
            "  " + "  ".join(f"{lab} {p:.2f}" for lab, p in zip(r["labels"], probs, strict=True))
        )


def main() -> None:
    cli(prog_name="hpo")


if __name__ == "__main__":
    sys.exit(main())
