"""Sampler seeds: one per trial, distinct on every worker of every machine, recorded on the
trial and enough to replay its random start-up point."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from hpo.config.space import suggest
from hpo.corpus.manifest import load_corpus
from hpo.kinds import load_spec
from hpo.study.open import open_study
from hpo.study.sampling import build_sampler
from tests.helpers import ONE_FEATURE_SET, ROOT, write_spec

# One worker of one machine: imports and reads the corpus, says it is ready, then waits for
# the go-file so that every worker really starts at once. Its trials only sample the space
# and take a moment (what is tested is what they sample, not the SVM).
_WORKER = """
import sys, time
from pathlib import Path
from hpo.config.space import suggest
from hpo.kinds import load_spec
from hpo.corpus.manifest import load_corpus
from hpo.study.worker import run_worker
spec_file, url, n, index, go = sys.argv[1:]
spec = load_spec(spec_file)
corpus = load_corpus(spec.data.corpus)

class Sample:
    def __call__(self, trial):
        time.sleep(0.3)
        return suggest(trial, spec.space)["C"]

print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.005)
run_worker(spec, url, int(n), None, int(index), None, corpus, Sample())
"""


@pytest.mark.slow
def test_machines_started_together_replay_no_start_up_trial(tmp_path: Path, prepared: Path) -> None:
    # The README's many-machines recipe: the same command on every machine, so worker i
    # of every machine has index i. Two machines x three workers, all started at once on an
    # empty study; every trial is a random start-up one. Before, worker i of both machines
    # had the same seed and the two replayed each other's trials.
    spec_file = write_spec(
        tmp_path / "svm.toml",
        data={"corpus": str(prepared)},
        sampler={"n_startup_trials": 50},
        space=ONE_FEATURE_SET,
    )
    spec, url, go, n = load_spec(spec_file), f"sqlite:///{tmp_path / 's.db'}", tmp_path / "go", 12
    open_study(spec, url, load_corpus(prepared))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(spec_file), url, str(n), str(i), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _machine in range(2)
        for i in range(3)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n", p.communicate()[0]
    go.touch()
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[-600:] for o in outs]
    trials = optuna.load_study(study_name="svm", storage=url).get_trials()
    assert sum(t.state.name == "COMPLETE" for t in trials) == n
    fresh = [t for t in trials if "retry_of" not in t.user_attrs]
    assert len(fresh) >= n
    # Enough workers took part for index collisions to have shown.
    assert len({t.user_attrs["worker"] for t in fresh}) >= 4
    repeated = Counter(tuple(sorted(t.params.items())) for t in fresh)
    assert [p for p, k in repeated.items() if k > 1] == []
    seeds = [t.user_attrs["sampler_seed"] for t in fresh]
    assert len(set(seeds)) == len(seeds)
    # Each trial's recorded seed replays its start-up point.
    for t in fresh:
        replay = optuna.create_study(sampler=build_sampler(spec, t.user_attrs["sampler_seed"]))
        assert suggest(replay.ask(), spec.space) == t.params
