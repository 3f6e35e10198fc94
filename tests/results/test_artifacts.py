"""The dashboard's figures go to a store the study names, which ``hpo dashboard`` serves
(issue #24, item 10): not ``./artifacts`` of each worker's working directory."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo.config import paths
from hpo.errors import HpoError
from hpo.kinds import load_spec
from hpo.results.dashboard import artifact_store
from hpo.study.run import run_study
from hpo.trial.notes import STORE_ATTR
from tests.helpers import ONE_FEATURE_SET, write_spec
from tests.study.test_parallel import postgres_url  # noqa: F401 - the throwaway server

PNG = b"\x89PNG\r\n\x1a\n"


def _run(tmp_path: Path, prepared: Path, storage: str, name: str, store: Path | None) -> None:
    spec = write_spec(
        tmp_path / f"{name}.toml",
        name=name,
        data={"corpus": str(prepared)},
        space=ONE_FEATURE_SET,
        run={"artifacts": str(store)} if store else {},
    )
    run_study(load_spec(spec), storage, n_trials=1)  # the first trial is the best


def _figure(store: Path, storage: str, name: str) -> bytes:
    """The best trial's confusion PNG's first bytes, read from ``store`` by its artifact id."""
    study = optuna.load_study(study_name=name, storage=storage)
    return (store / study.best_trial.user_attrs["confusion_artifact"]).read_bytes()[:8]


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HPO_ARTIFACTS", raising=False)
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    return here


@pytest.mark.slow  # a one-trial study: about 6 s
def test_a_named_store_holds_the_figures_and_the_dashboard_serves_it(
    tmp_path: Path, prepared: Path, cwd: Path
) -> None:
    db, store = tmp_path / "db" / "s.db", tmp_path / "shared" / "store"
    db.parent.mkdir()
    _run(tmp_path, prepared, f"sqlite:///{db}", "named", store)
    assert _figure(store, f"sqlite:///{db}", "named") == PNG
    assert not (cwd / "artifacts").exists() and not (db.parent / "artifacts").exists()
    assert artifact_store(str(db)) == store.resolve()


def test_dashboard_store_option_wins_and_different_stores_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        optuna.create_study(study_name=name, storage=url).set_user_attr(
            STORE_ATTR, str(tmp_path / name)
        )
    with pytest.raises(HpoError, match="different stores .*--artifacts DIR"):
        artifact_store(url)
    assert artifact_store(url, tmp_path / "mine") == tmp_path / "mine"


@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_writes_figures_only_to_a_named_store(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    prepared: Path,
    cwd: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths._warn_once.cache_clear()
    _run(tmp_path, prepared, postgres_url, "unnamed", None)
    # Not in ./artifacts of this worker, where no dashboard host could read it.
    assert not (cwd / "artifacts").exists()
    assert "no artifact store named" in capsys.readouterr().err
    store = tmp_path / "shared"
    _run(tmp_path, prepared, postgres_url, "named", store)
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    assert _figure(store, url, "named") == PNG
    assert not (cwd / "artifacts").exists()
    assert artifact_store(postgres_url) == store.resolve()
