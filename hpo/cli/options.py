"""Options several commands share, one decorator each."""

from __future__ import annotations

from pathlib import Path

import click

storage_option = click.option(
    "--storage",
    envvar="HPO_STORAGE",
    default=None,
    metavar="URL",
    help="SQLAlchemy URL or .db path [default: sqlite:///studies/hpo.db; env HPO_STORAGE].",
)

study_name_option = click.option(
    "--study",
    required=True,
    metavar="NAME",
    help="Name of a study in the storage (hpo status lists them).",
)

study_file_option = click.option(
    "--study",
    required=True,
    metavar="NAME|PATH",
    help="A study: NAME for ./studies/NAME.toml or the shipped one, or a path to a .toml file.",
)

data_option = click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Prepared corpus directory (overrides the study file).",
)

jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores).",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
