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
    for k, n in ((1, 1), (2, 2)):
        line = re.search(rf"K={k}: step s per process ([\d., ]+); aggregate ([\d.]+) clips/s", out)
        assert line, out
        steps = [float(x) for x in line.group(1).split(",")]
        assert len(steps) == n and all(s > 0 for s in steps)
        assert float(line.group(2)) > 0
    folds = re.findall(
        r"fold \d .* ([\d.]+) s wall = ([\d.]+) s steps \+ ([\d.]+) s validation", out
    )
    assert len(folds) == 2 and all(float(s) > 0 and float(v) > 0 for _, s, v in folds), out
    assert re.search(r"projected default w2v study .* at K=[12]: [\d.]+ h", out), out
