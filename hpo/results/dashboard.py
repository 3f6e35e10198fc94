"""``hpo dashboard``: optuna-dashboard on the same storage, and artifact store, the studies use."""

from __future__ import annotations

from pathlib import Path

from hpo.config.paths import artifacts_dir
from hpo.errors import HpoError
from hpo.study.storage import open_storage
from hpo.trial.notes import STORE_ATTR


def artifact_store(storage_url: str, option: Path | None = None) -> Path | None:
    """The folder whose figures the dashboard serves: ``option`` (``--artifacts``), else the
    store the studies' workers wrote to (recorded on each study), else the default of
    ``artifacts_dir`` ($HPO_ARTIFACTS, beside an SQLite file; None for PostgreSQL)."""
    if option is not None:
        return option
    storage = open_storage(storage_url, create=False)
    recorded = {s.user_attrs.get(STORE_ATTR) for s in storage.get_all_studies()} - {None}
    if len(recorded) > 1:
        raise HpoError(
            f"the studies of this storage keep their figures in different stores "
            f"({', '.join(sorted(recorded))}): serve one with --artifacts DIR"
        )
    if not recorded:
        return artifacts_dir(storage_url)
    store = Path(recorded.pop())
    if store.is_dir():
        return store
    # Moved since (a project folder holding the SQLite file and its store beside it).
    here = artifacts_dir(storage_url, warn=False)
    if here is not None and here.is_dir():
        return here
    raise HpoError(
        f"artifact store {store} (where the studies' workers wrote their figures) is not on "
        "this machine: mount it, or give its path here with --artifacts DIR"
    )


def serve(
    storage_url: str, host: str = "127.0.0.1", port: int = 8080, artifacts: Path | None = None
) -> None:
    """Block serving the dashboard until interrupted."""
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import run_server

    storage = open_storage(storage_url, create=False)
    store = artifact_store(storage_url, artifacts)
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
    shown = f"figures from {store}" if store else "no figures"
    print(f"optuna-dashboard on http://{host}:{port}/, {shown} (Ctrl-C to stop)", flush=True)
    run_server(
        storage,
        host=host,
        port=port,
        artifact_store=FileSystemArtifactStore(str(store)) if store else None,
    )
