"""``hpo dashboard``: optuna-dashboard on the same storage the studies use."""

from __future__ import annotations

from hpo.config.paths import artifacts_dir
from hpo.study.storage import open_storage


def serve(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Block serving the dashboard until interrupted."""
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import run_server

    storage = open_storage(storage_url, create=False)
    artifacts = artifacts_dir(storage_url)
    artifacts.mkdir(parents=True, exist_ok=True)
    print(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    run_server(
        storage, host=host, port=port, artifact_store=FileSystemArtifactStore(str(artifacts))
    )
