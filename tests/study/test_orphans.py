"""The worker id's start time comes from psutil: the same instant the /proc read gave."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hpo.study.orphans import _dead_here, worker_id


def _proc_start_time(pid: int) -> str:
    """The /proc reading psutil replaced (the reference): boot time plus the start ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat", encoding="ascii") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    return f"{boot + ticks / os.sysconf('SC_CLK_TCK'):.2f}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_start_time_is_the_one_proc_records() -> None:
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    try:
        for pid in (os.getpid(), child.pid):
            assert worker_id(pid).rsplit(":", 1)[1] == _proc_start_time(pid)
        # A live process is alive by its id; the same pid with another start time is a reuse.
        assert not _dead_here(worker_id(child.pid))
        host_to_pid, start = worker_id(child.pid).rsplit(":", 1)
        assert _dead_here(f"{host_to_pid}:{float(start) - 1:.2f}")
    finally:
        child.kill()
        child.wait()
    assert worker_id(child.pid).endswith(":-") and _dead_here(worker_id(child.pid))
