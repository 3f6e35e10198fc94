"""``hpo dashboard``: optuna-dashboard on the same storage the studies use."""

from __future__ import annotations

from hpo.storage import open_storage


def serve(storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Block serving the dashboard until interrupted."""
    from optuna_dashboard import run_server

    storage = open_storage(storage_url, create=False)
    print(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    run_server(storage, host=host, port=port)
