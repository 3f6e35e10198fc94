"""The several-trials-per-device benchmark's code path, on the CPU with the tiny model (its
figures are measured by running it, not here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.heavy
def test_share_bench_runs_k_processes_and_a_fold_on_the_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    args = ["--device", "cpu", "--ks", "1,2", "--steps", "2", "--clips-per-actor", "2"]
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "share_bench.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    ratios = {}
    for k, n in ((1, 1), (2, 2)):
        line = re.search(
            rf"K={k}: step s per process ([\d., ]+); aggregate ([\d.]+) clips/s = ([\d.]+)x", out
        )
        assert line, out
        steps = [float(x) for x in line.group(1).split(",")]
        assert len(steps) == n and all(s > 0 for s in steps)  # one median per process
        ratios[k] = float(line.group(3))
    assert ratios[1] == 1.0  # K=1 is the baseline the others are measured against
    folds = re.findall(
        r"fold \d .* ([\d.]+) s wall = ([\d.]+) s steps \+ ([\d.]+) s validation "
        r"\+ (-?[\d.]+) s fixed cost",
        out,
    )
    assert len(folds) == 2, out
    for wall, *parts in folds:  # the split adds up to the fold's wall time, all of it timed
        assert abs(float(wall) - sum(map(float, parts))) < 0.025 and float(parts[0]) > 0
    assert re.search(r"projected default w2v study .* at K=[12]: [\d.]+ h", out), out


def test_projected_hours_is_the_default_study_at_k_trials_at_once() -> None:
    import importlib.util
    import math

    from hpo.kinds import load_spec

    spec = importlib.util.spec_from_file_location(
        "share_bench", ROOT / "benchmarks" / "share_bench.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    s = load_spec("w2v")
    t = s.settings.training
    # RAVDESS: 1440 clips, five sixths trained on per fold; a validation forward ~ 1/3 step.
    steps = t.epochs * (math.ceil(1200 / t.batch_size) + math.ceil(240 / t.batch_size) / 3)
    one = s.budget.n_trials * s.data.folds * (steps * 0.5 + 10) / 3600
    assert bench.projected_hours(0.5, 1, 10.0) == pytest.approx(one)
    # K trials at once: ceil(n_trials / K) rounds of trials.
    k3 = math.ceil(s.budget.n_trials / 3) * s.data.folds * (steps * 0.5 + 10) / 3600
    assert bench.projected_hours(0.5, 3, 10.0) == pytest.approx(k3)
