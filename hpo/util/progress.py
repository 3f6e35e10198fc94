"""Rich progress bars on stderr, quiet when stderr is not a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def new_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


@contextlib.contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A one-task progress bar; yields a function that advances it by one."""
    with new_progress() as p:
        task = p.add_task(description, total=total, info="")
        yield lambda: p.advance(task)


class TrialReporter:
    """Progress of a study: trials, folds of the current trial, epochs, best so far.

    A live rich display on a terminal; plain log lines otherwise (CI, files, workers).
    """

    def __init__(self, n_trials: int, done: int, metric: str, prefix: str = "") -> None:
        self.metric = metric
        self.prefix = prefix
        self.live = console.is_terminal and not prefix
        self._p = new_progress() if self.live else None
        if self._p:
            self._trials = self._p.add_task("trials", total=n_trials, completed=done, info="")
            self._folds = self._p.add_task("folds", total=1, info="", visible=False)
            self._epochs = self._p.add_task("epochs", total=1, info="", visible=False)

    def __enter__(self) -> TrialReporter:
        if self._p:
            self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p:
            self._p.stop()

    def log(self, msg: str) -> None:
        console.print(f"{self.prefix}{msg}", highlight=False, soft_wrap=True, markup=False)

    def trial_started(self, number: int, params: dict, n_folds: int) -> None:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
        if self._p:
            self._p.update(
                self._folds,
                total=n_folds,
                completed=0,
                visible=True,
                description=f"trial {number} folds",
                info=shown,
            )
        else:
            self.log(f"trial {number} started: {shown}")

    def fold_done(self, fold: int, scores: dict) -> None:
        if self._p:
            self._p.update(
                self._folds, advance=1, info=f"fold {fold}: {self.metric} {scores[self.metric]:.3f}"
            )
            self._p.update(self._epochs, visible=False)
        else:
            self.log(f"  fold {fold}: {self.metric} {scores[self.metric]:.3f}")

    def epoch_done(self, fold: int, epoch: int, n_epochs: int, info: str) -> None:
        if self._p:
            self._p.update(
                self._epochs,
                total=n_epochs,
                completed=epoch,
                visible=True,
                description=f"fold {fold} epochs",
                info=info,
            )
        else:
            self.log(f"    fold {fold} epoch {epoch}/{n_epochs}: {info}")

    def trial_finished(
        self, number: int, state: str, value: float | None, best: float | None, finished: int
    ) -> None:
        v = "-" if value is None else f"{value:.4f}"
        b = "-" if best is None else f"{best:.4f}"
        if self._p:
            self._p.update(
                self._trials,
                completed=finished,
                info=f"last #{number} {state} {v}; best {self.metric} {b}",
            )
        else:
            self.log(f"trial {number} {state}: {self.metric} {v} (best {b}, {finished} finished)")


def _fmt(v: object) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
