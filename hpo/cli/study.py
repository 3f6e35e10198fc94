"""``hpo study widen``: changes to a study's definition that keep its finished trials."""

from __future__ import annotations

from pathlib import Path

import click

from hpo.cli.group import cli
from hpo.cli.options import storage_option, study_name_option


@cli.group("study")
def study() -> None:
    """Change a study's search space and keep its finished trials."""


@study.command("widen")
@study_name_option
@storage_option
@click.option("--param", required=True, metavar="NAME", help="The numeric parameter to widen.")
@click.option("--low", type=float, default=None, help="Its new lower bound [default: as is].")
@click.option("--high", type=float, default=None, help="Its new upper bound [default: as is].")
@click.option(
    "--name",
    "new_name",
    default=None,
    metavar="NAME",
    help="The new study's name [default: STUDY-wide].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The new study file [default: studies/NAME.toml].",
)
@click.option(
    "--more",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Trials to run beyond the copied ones [default: half the study's budget].",
)
def widen(
    study: str,
    storage: str,
    param: str,
    low: float | None,
    high: float | None,
    new_name: str | None,
    out: Path | None,
    more: int | None,
) -> None:
    """Continue a study with one range widened: write a copy of its study file with the
    new range and a new name, and a new study holding every finished trial of the old one
    under the widened range (TPE and the pruner use them all), then print the 'hpo run'
    that continues it. The old study is left as it was."""
    from hpo.study.widen import widen_study

    w = widen_study(storage, study, param, low, high, new_name, out, more)
    click.echo(
        f"wrote {w.path}: {w.param} in [{w.after[0]:g}, {w.after[1]:g}] "
        f"(was [{w.before[0]:g}, {w.before[1]:g}])"
    )
    click.echo(
        f"study '{w.study}': {w.copied} finished trials of '{study}' copied under the widened "
        f"range; its budget is {w.n_trials} finished trials"
    )
    click.echo(f"continue it: {w.command}")
