"""The worker loop: run trials until the study has its total, in this process.

``n_trials`` is the total the study ends with (finished = complete + pruned), not an
increment. Every worker loops: run a trial while fewer than ``n_trials`` are finished or
under way; when the remaining ones are all under way elsewhere, wait, and fail (then
re-queue) those of workers that died: at once for a dead process on this machine, after
the heartbeat's grace period for other machines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

import optuna
from optuna.trial import TrialState

from hpo.config.paths import artifacts_dir
from hpo.config.study import StudySpec
from hpo.corpus.manifest import Corpus, load_corpus
from hpo.errors import HpoError
from hpo.kinds import get_kind
from hpo.study.locks import AskLock, ask_lock
from hpo.study.orphans import fail_dead_local, fail_orphans, worker_id
from hpo.study.sampling import build_pruner, build_sampler
from hpo.study.storage import open_storage
from hpo.trial.cv import CvObjective, TrialFailed
from hpo.util.progress import TrialReporter

MAX_FAILED_IN_A_ROW = 3  # a broken setup fails every trial: stop instead of looping
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class SurplusTrial(Exception):
    """A trial started after the study already had ``n_trials`` trials finished or running."""


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def best_of(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def run_worker(
    spec: StudySpec,
    storage_url: str,
    n_trials: int,
    deadline: float | None,
    index: int,
    reporter: TrialReporter | None,
    corpus: Corpus | None = None,
    objective: CvObjective | None = None,
) -> int:
    """Run trials until the study has ``n_trials`` finished ones; returns how many ran here.

    ``objective`` (with its ``folds``) may be given to reuse one across studies, as nested
    cross-validation does; by default the kind builds it for the corpus's folds.
    """
    corpus = corpus or load_corpus(spec.data.corpus)
    storage = open_storage(storage_url, spec.run)
    offset = storage.get_n_trials(storage.get_study_id_from_name(spec.name)) + 1000 * index
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        sampler=build_sampler(spec, offset),
        pruner=build_pruner(spec),
    )
    inner = objective or get_kind(spec.kind).objective(spec, corpus, reporter)
    if corpus.synthetic and reporter and index == 0:  # after the corpus was read: one note
        reporter.log("note: SYNTHETIC corpus; scores say nothing about real speech")
    host = worker_id()
    fail_dead_local(study, spec.run.max_retry)  # a resumed run retries them at once

    inner.artifacts = artifacts_dir(storage_url)
    inner.label_names = corpus.labels  # names the confusion matrices of the dashboard's notes
    lock = ask_lock(storage, storage_url, spec.name)
    ran_here: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        lock.release()  # the trial exists now: others may ask
        ran_here.append(trial.number)
        ahead = [
            t for t in study.get_trials(deepcopy=False, states=LIVE) if t.number < trial.number
        ]
        if len(ahead) >= n_trials:
            trial.set_user_attr("fail_reason", "surplus: the study already had its trials")
            raise SurplusTrial()
        trial.set_user_attr("worker", host)
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            trial.set_user_attr("devices", os.environ["CUDA_VISIBLE_DEVICES"])
        return inner(trial)

    ran, failed_in_a_row = 0, 0
    with _interrupt_guard() as interrupted:
        try:
            while True:
                if interrupted.is_set():
                    raise KeyboardInterrupt
                if _step(study, objective, spec, n_trials, deadline, reporter, lock, ran_here):
                    ran += 1
                    reason = _fail_reason(study, ran_here[-1])
                    failed_in_a_row = failed_in_a_row + 1 if reason else 0
                    if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                        raise HpoError(
                            f"{failed_in_a_row} trials in a row failed, the last with {reason}; "
                            "finished trials are kept (see 'hpo status')"
                        )
                if _done(study, n_trials, deadline):
                    break
        finally:
            lock.close()
    return ran


def _fail_reason(study: optuna.Study, number: int) -> str | None:
    """Why trial ``number`` failed on an error of its own (None if it did not)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number == number and not str(t.user_attrs.get("fail_reason", "")).startswith(
            "surplus"
        ):
            return str(t.user_attrs.get("fail_reason", "an unknown error"))
    return None


@contextlib.contextmanager
def _interrupt_guard():
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: Python drops an
    exception raised inside a garbage-collection callback (SQLAlchemy has some), and a
    remembered Ctrl-C stops the run at the next trial boundary instead of being lost."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.set()
        raise KeyboardInterrupt

    def unraisable(u) -> None:
        # The dropped Ctrl-C is in ``flag``; don't print its traceback.
        if not issubclass(u.exc_type, KeyboardInterrupt):
            old_hook(u)

    old = signal.signal(signal.SIGINT, handler)
    old_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)
        sys.unraisablehook = old_hook


def _done(study: optuna.Study, n_trials: int, deadline: float | None) -> bool:
    if deadline is not None and time.time() >= deadline:
        return True
    return _count(study, FINISHED) >= n_trials


def _step(
    study,
    objective,
    spec: StudySpec,
    n_trials: int,
    deadline: float | None,
    reporter: TrialReporter | None,
    lock: AskLock,
    ran_here: list[int],
) -> int:
    """Run one trial, or wait for trials under way elsewhere; return trials run (0 or 1)."""
    if _done(study, n_trials, deadline):
        return 0
    lock.acquire()
    try:
        if _count(study, LIVE) >= n_trials and not _count(study, (TrialState.WAITING,)):
            lock.release()
            # The rest are under way (here, elsewhere, or in a crashed run whose heartbeat
            # has stopped): wait, and let the heartbeat check re-queue the crashed ones.
            time.sleep(min(spec.run.heartbeat_interval, 5))
            optuna.storages.fail_stale_trials(study)
            fail_dead_local(study, spec.run.max_retry)
            fail_orphans(study, spec.run.grace_period, spec.run.max_retry)
            return 0
        before = {t.number for t in study.get_trials(deepcopy=False)}
        try:
            study.optimize(objective, n_trials=1, catch=(SurplusTrial, TrialFailed))
        except KeyboardInterrupt:
            if ran_here and ran_here[-1] not in before:
                _requeue_interrupted(study, ran_here[-1], spec.run.max_retry)
            raise
    finally:
        lock.release()
    if reporter and ran_here and ran_here[-1] not in before:
        (t,) = [t for t in study.get_trials(deepcopy=False) if t.number == ran_here[-1]]
        best = best_of(study)
        state, value = t.state.name, t.value
        folds = [v for v in t.user_attrs.get(f"fold_{spec.objective.metric}", []) if v is not None]
        if t.state == TrialState.PRUNED and folds:
            # A pruned trial's value is its last report (one fold's score under Wilcoxon):
            # show the mean of the folds it did run, and how many.
            n_folds = len(t.user_attrs[f"fold_{spec.objective.metric}"])
            state, value = f"PRUNED after {len(folds)}/{n_folds} folds", sum(folds) / len(folds)
        reporter.trial_finished(
            t.number, state, value, best.value if best else None, _count(study, FINISHED)
        )
    return 1


def _requeue_interrupted(study: optuna.Study, number: int, max_retry: int) -> None:
    """Ctrl-C stopped trial ``number``: make sure it is failed (a Ctrl-C landing in Optuna's
    own clean-up can leave it RUNNING) and queue it again, so a resumed run retries its
    parameters."""
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.FAIL)):
        if t.number != number:
            continue
        if t.state == TrialState.RUNNING:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        retry(study, study._storage.get_trial(t._trial_id))
