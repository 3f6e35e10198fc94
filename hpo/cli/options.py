"""Options several commands share, one decorator each."""

from __future__ import annotations

from pathlib import Path

import click


def _storage_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    from hpo.config.paths import storage_url

    return storage_url(value)


# Commands get the resolved URL: the option, else $HPO_STORAGE, else the default
# (hpo.config.paths.storage_url, the one place that decides).
storage_option = click.option(
    "--storage",
    default=None,
    callback=_storage_url,
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
