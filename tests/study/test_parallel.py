"""Many workers: processes on one SQLite file, and separate runs joining one PostgreSQL study."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.study.locks import FileAskLock, ask_lock, lock_path
from hpo.study.open import open_study, provenance
from hpo.study.storage import open_storage
from tests.helpers import ONE_FEATURE_SET, ROOT, trial_states, write_spec


@pytest.fixture
def spec_file(tmp_path: Path, prepared: Path) -> Path:
    return write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 4},
        space=ONE_FEATURE_SET,
    )


@pytest.mark.slow
def test_sqlite_workers_finish_exactly_the_total(tmp_path: Path, spec_file: Path) -> None:
    # Two worker processes are enough to share one file and race for the last trials.
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli,
        ["run", "--study", str(spec_file), "--n-trials", "8", "--jobs", "2", "--storage", str(db)],
    )
    assert res.exit_code == 0, res.output
    states = Counter(s for _, s in trial_states(db))
    # No "database is locked" failure, no lost or duplicated trial, exactly the total.
    assert states["COMPLETE"] + states["PRUNED"] == 8
    assert states["FAIL"] == 0 and states["RUNNING"] == 0 and states["WAITING"] == 0
    numbers = [n for n, _ in trial_states(db)]
    assert numbers == list(range(len(numbers)))
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) >= 2  # the trials really were shared out
    # Asking again for the same total runs nothing more.
    res = CliRunner().invoke(
        cli,
        ["run", "--study", str(spec_file), "--n-trials", "8", "--jobs", "2", "--storage", str(db)],
    )
    assert res.exit_code == 0 and len(trial_states(db)) == len(numbers)


def test_a_run_joining_while_the_study_is_being_created_waits_for_itsprovenance(
    tmp_path: Path, spec_file: Path, prepared: Path
) -> None:
    # Found with three PostgreSQL runs started at once: one had created the study and
    # stamped only part of its provenance when another joined and refused it as "run on
    # another corpus (manifest None)".
    spec, corpus = load_spec(spec_file), load_corpus(prepared)
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    creating = ask_lock(storage, url, spec.name)
    creating.acquire()
    study = optuna.create_study(storage=storage, study_name=spec.name, direction="maximize")
    study.set_user_attr("spec_hash", spec.hash)  # half-way: no manifest_hash yet
    outcome: dict[str, object] = {}

    def join() -> None:
        try:
            outcome["study"] = open_study(spec, url, corpus)
        except Exception as e:  # noqa: BLE001 - reported by the assertions below
            outcome["error"] = e

    joiner = threading.Thread(target=join)
    joiner.start()
    joiner.join(timeout=1.0)
    assert joiner.is_alive() and not outcome, outcome  # waiting, not refusing
    for k, v in provenance(spec, corpus).items():
        study.set_user_attr(k, v)
    creating.close()
    joiner.join(timeout=30)
    assert "error" not in outcome, outcome
    joined = outcome["study"]
    assert isinstance(joined, optuna.Study)
    assert joined.user_attrs["manifest_hash"] == corpus.manifest_hash


# Opens a new SQLite file in each round, all processes at once: each says it is ready, then
# waits for the round's go-file (imports are done by then, so the opens really overlap).
_OPEN_ROUNDS = """
import sys, time
from pathlib import Path
from hpo.study.storage import open_storage
for db in sys.argv[1:]:
    print("ready", flush=True)
    while not Path(db + ".go").exists():
        time.sleep(0.005)
    open_storage(db)
"""


@pytest.mark.slow
def test_runs_starting_together_on_a_new_sqlite_file_all_open_it(tmp_path: Path) -> None:
    # Three `hpo run`s started at once on a new file: before, about one in ten lost the race
    # to create Optuna's tables ("UNIQUE constraint failed: alembic_version.version_num").
    # Six processes, three new files: fifteen chances to lose the race, six interpreters.
    dbs = [str(tmp_path / f"new{round_}.db") for round_ in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_ROUNDS, *dbs],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(6)
    ]
    for db in dbs:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n", p.communicate()[0]
        Path(db + ".go").touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[-400:] for o in outs if o]
    for db in dbs:
        assert trial_states(Path(db)) == []  # a valid, empty Optuna database


def test_opening_a_new_sqlite_file_waits_for_the_shared_lock(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    held = FileAskLock(lock_path(db))
    held.acquire()
    opened: list[object] = []
    opener = threading.Thread(target=lambda: opened.append(open_storage(str(db))))
    opener.start()
    opener.join(timeout=1.0)
    assert opener.is_alive() and not opened  # taking turns, not racing
    held.close()
    opener.join(timeout=30)
    assert len(opened) == 1 and trial_states(db) == []
    # Read-only commands never wait for (or create) the lock.
    lock_path(db).unlink()
    open_storage(str(db), create=False)
    assert not lock_path(db).exists()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture
def postgres_url() -> str:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg")
    # The server refuses to run as root: run it as the 'postgres' user when we are root.
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser to start PostgreSQL")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="hpo-pg-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    if as_user:
        shutil.chown(data, "postgres")
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = lambda *cmd: subprocess.run(as_user + list(cmd), check=True, capture_output=True)  # noqa: E731
    # A throwaway server: no fsync at init or on commit (what is tested is how hpo's runs
    # share a study, not the server's durability).
    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(
        pg_ctl,
        "-D",
        str(data),
        "-l",
        str(base / "log"),
        "-w",
        "-o",
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off",
        "start",
    )
    try:
        import psycopg

        for _ in range(50):
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
                ) as con:
                    con.execute("CREATE DATABASE hpo")
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        yield f"postgresql://postgres@127.0.0.1:{port}/hpo"
    finally:
        subprocess.run(
            as_user + [pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.postgres
def test_three_runs_join_one_postgresql_study(postgres_url: str, spec_file: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "hpo",
        "run",
        "--study",
        str(spec_file),
        "--n-trials",
        "12",
        "--storage",
        postgres_url,
    ]
    # Three runs of the same command, as on three machines: one creates the study, the
    # others join it.
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    failed = [
        f"exit {p.returncode}: ...{o[-1500:]}"
        for p, o in zip(procs, outs, strict=True)
        if p.returncode
    ]
    assert not failed, "\n".join(failed)
    study = optuna.load_study(
        study_name="svm", storage=postgres_url.replace("postgresql://", "postgresql+psycopg://")
    )
    states = Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] + states["PRUNED"] == 12, (states, [o[-600:] for o in outs])
    assert states["FAIL"] == 0 and states["RUNNING"] == 0
    assert len({t.user_attrs["worker"] for t in study.trials}) >= 2
    # Started together, the runs' workers never replay each other's start-up trials.
    fresh = [
        tuple(sorted(t.params.items())) for t in study.trials if "retry_of" not in t.user_attrs
    ]
    assert len(set(fresh)) == len(fresh)
    res = CliRunner().invoke(cli, ["status", "--storage", postgres_url, "--json"])
    assert res.exit_code == 0 and '"trials": 12' in res.output


@pytest.mark.slow
@pytest.mark.heavy
def test_workers_are_pinned_to_devices_round_robin(tmp_path: Path, spec_file: Path) -> None:
    db = tmp_path / "s.db"
    res = subprocess.run(
        [sys.executable, "-m", "hpo", "run", "--study", str(spec_file), "--n-trials", "3"]
        + ["--jobs", "3", "--devices", "3,5", "--storage", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    # Every worker says where it was pinned as it starts, whether or not it got a trial:
    # worker i gets device i mod 2.
    for i, dev in enumerate(["3", "5", "3"]):
        assert f"[worker {i}] pinned to CUDA_VISIBLE_DEVICES={dev}" in res.stderr
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    by_worker: dict[str, set[str]] = {}
    for t in study.trials:
        by_worker.setdefault(t.user_attrs["worker"], set()).add(t.user_attrs["devices"])
    # Each worker process ran its trials on exactly the one device it was given.
    assert by_worker and all(len(d) == 1 for d in by_worker.values())
    assert set().union(*by_worker.values()) <= {"3", "5"}
