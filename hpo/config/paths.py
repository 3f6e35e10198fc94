"""Where hpo reads and writes by default: resolved here and nowhere else.

Every default is relative to the working directory (the project folder a user runs hpo
in), so one folder holds a project's corpus, studies, models and logs. Each can be moved
with an environment variable; a command-line option (or, for the dashboard figures, the
study's ``[run] artifacts``) beats both.

| what | default | variable |
|---|---|---|
| study storage | ``sqlite:///studies/hpo.db`` | ``HPO_STORAGE`` |
| local study files | ``studies/`` | |
| exported configurations, trained models | ``models/`` | ``HPO_MODELS`` |
| TensorBoard runs | ``runs/`` (a w2v study's ``tensorboard_dir``) | |
| reports | ``reports/`` | ``HPO_REPORTS`` |
| dashboard figures | ``artifacts/`` beside an SQLite file (PostgreSQL: none) | ``HPO_ARTIFACTS`` |

Shipped study definitions are package data (``hpo.studies``): ``--study svm`` finds
``./studies/svm.toml`` first, then the shipped one, so hpo works from any directory.
"""

from __future__ import annotations

import functools
import os
import sys
from importlib import resources
from pathlib import Path

from hpo.config.urls import sqlite_path

STUDIES_DIR = Path("studies")
DEFAULT_STORAGE = "sqlite:///studies/hpo.db"


def storage_url(option: str | None = None) -> str:
    """The storage URL: the option, else ``$HPO_STORAGE``, else the SQLite file in studies/."""
    return option or os.environ.get("HPO_STORAGE") or DEFAULT_STORAGE


def models_dir() -> Path:
    return Path(os.environ.get("HPO_MODELS") or "models")


def reports_dir() -> Path:
    return Path(os.environ.get("HPO_REPORTS") or "reports")


def artifacts_dir(storage: str, named: str | None = None, warn: bool = True) -> Path | None:
    """The artifact store of the dashboard's figures: ``named`` (a study's ``[run]
    artifacts``), else ``$HPO_ARTIFACTS``, else ``artifacts/`` beside an SQLite database, so
    the two travel together.

    None for a server database (PostgreSQL) with no store named, after a one-line warning:
    its workers run on several machines, and a folder of each one's working directory is no
    store the dashboard's host can read. No figure is then written; the trials' notes and
    ``hpo report`` hold the same matrices, so a run is not refused over it. ``warn=False``
    for a caller with a better message of its own.
    """
    if named:
        return Path(named)
    if os.environ.get("HPO_ARTIFACTS"):
        return Path(os.environ["HPO_ARTIFACTS"])
    db = sqlite_path(storage)
    if db is None:
        if warn:
            _warn_once(
                "hpo: warning: no artifact store named for a storage other than an SQLite file: "
                "no dashboard figures; name a folder every worker and the dashboard host can read "
                "([run] artifacts in the study file, or $HPO_ARTIFACTS)"
            )
        return None
    return db.parent / "artifacts"


@functools.cache
def _warn_once(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def shipped_studies() -> dict[str, Path]:
    """Study name → file, for the definitions installed with hpo."""
    root = resources.files("hpo.studies")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def known_studies() -> list[str]:
    """Names ``--study`` accepts without a path: local ones and shipped ones."""
    local = {p.stem for p in STUDIES_DIR.glob("*.toml")} if STUDIES_DIR.is_dir() else set()
    return sorted(local | set(shipped_studies()))


def resolve_study_path(study: str) -> Path:
    """``svm`` → ``./studies/svm.toml`` if it exists, else the shipped ``svm.toml``; a path
    (anything ending in .toml, or an existing file) is taken as is."""
    p = Path(study)
    if p.suffix == ".toml" or p.exists():
        return p
    local = STUDIES_DIR / f"{study}.toml"
    if local.is_file():
        return local
    return shipped_studies().get(study, local)


# Set by the runner in each worker process: its index (a kind may pick a GPU by it).
WORKER_INDEX_VAR = "HPO_WORKER_INDEX"
