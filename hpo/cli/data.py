"""``hpo data``: prepare, inspect or synthesize a corpus."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hpo.cli.group import OneLineErrors, cli
from hpo.cli.options import jobs_option, json_option


@cli.group(cls=OneLineErrors)
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
    type=click.IntRange(min=2),
    default=6,
    show_default=True,
    help="Number of actor folds to assign (studies must ask for the same number).",
)
@jobs_option
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
@json_option
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
@click.option("--actors", type=click.IntRange(1, 24), default=24, show_default=True)
@click.option("--clips-per-actor", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@jobs_option
def data_synth(out: Path, actors: int, clips_per_actor: int, seed: int, jobs: int | None) -> None:
    """Write a SYNTHETIC corpus in the RAVDESS layout (48 kHz, same file names).

    For offline demos and tests only: results on it say nothing about real speech."""
    from hpo.corpus.synth import synthesize

    r = synthesize(out, actors=actors, clips_per_actor=clips_per_actor, seed=seed, jobs=jobs)
    click.echo(
        f"wrote {r.clips} synthetic clips ({r.actors} actors, {r.sample_rate} Hz) "
        f"to {r.out}; prepare them with: hpo data prepare {r.out}"
    )
