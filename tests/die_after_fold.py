"""``hpo`` that signals itself at a known point: ``python -m tests.die_after_fold run ...``.

The crash tests need a worker that dies while a trial is under way. Sending a signal from
outside lands wherever the run happens to be (between trials, say), so those tests looped
until one landed mid-trial. Here the worker sends ``HPO_TEST_SIGNAL`` (a signal name,
default SIGKILL) to itself right after its ``HPO_TEST_DIE_AFTER_FOLD``-th fold (counted
over the whole run) is stored and reported: that trial is RUNNING with that fold recorded.
"""

from __future__ import annotations

import os
import signal

from hpo.cli import main
from hpo.util.progress import TrialReporter

_after = int(os.environ["HPO_TEST_DIE_AFTER_FOLD"])
_sig = signal.Signals[os.environ.get("HPO_TEST_SIGNAL", "SIGKILL")]
_report = TrialReporter.fold_done
_folds = 0


def _fold_done(self: TrialReporter, fold: int, scores: dict) -> None:
    # TrialReporter.fold_done runs after the fold's scores are stored on the trial.
    global _folds
    _report(self, fold, scores)
    _folds += 1
    if _folds == _after:
        os.kill(os.getpid(), _sig)


TrialReporter.fold_done = _fold_done  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
