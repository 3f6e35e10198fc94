"""pmap: results in order; a failing task (a damaged clip) ends the map without waiting for
the tasks not yet started (Executor.map cancels them), so the error comes at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hpo.util.parallel import pmap


def _square(x: int) -> int:
    return x * x


def _fail_first(task: tuple[Path, int]) -> int:
    """Task 0 fails at once; every other task leaves a mark and takes a moment."""
    marks, i = task
    if i == 0:
        raise ValueError("damaged clip")
    time.sleep(0.05)
    (marks / str(i)).touch()
    return i


def test_results_come_in_task_order() -> None:
    assert list(pmap(_square, list(range(20)), "squares", jobs=2, chunksize=3)) == [
        x * x for x in range(20)
    ]


def test_a_failed_task_stops_the_tasks_not_yet_started(tmp_path: Path) -> None:
    tasks = [(tmp_path, i) for i in range(60)]
    with pytest.raises(ValueError, match="damaged clip"):
        list(pmap(_fail_first, tasks, "tasks", jobs=2, chunksize=1))
    # Tasks already handed to a worker finish; the rest never start (all 59 would take 1.5 s
    # on two workers before the error was raised).
    assert len(list(tmp_path.iterdir())) < 20
