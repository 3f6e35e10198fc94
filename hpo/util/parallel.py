"""Map a function over tasks on worker processes, in order, with a progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from hpo.util.progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")


def pmap(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    description: str,
    jobs: int | None = None,
    chunksize: int = 8,
) -> Iterator[R]:
    """Yield ``fn(task)`` for every task, in order; one process when ``jobs`` is 1."""
    workers = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))
    with progress_bar(description, total=len(tasks)) as advance:
        if workers == 1:
            for t in tasks:
                yield fn(t)
                advance()
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(fn, tasks, chunksize=chunksize):
                yield r
                advance()
