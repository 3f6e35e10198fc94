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
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from hpo.config.paths import artifacts_dir
from hpo.config.study import StudySpec
from hpo.corpus.manifest import Corpus, load_corpus
from hpo.errors import HpoError
from hpo.kinds import get_kind
from hpo.study.locks import AskLock, ask_lock
from hpo.study.orphans import fail_and_retry, fail_dead_local, fail_orphans, worker_id
from hpo.study.retry import queue_retry
from hpo.study.sampling import build_pruner, build_sampler, trial_seed
from hpo.study.storage import open_storage
from hpo.trial.cv import CvObjective, TrialFailed
from hpo.trial.metrics import cv_value
from hpo.util.progress import TrialReporter

MAX_FAILED_IN_A_ROW = 3  # a broken setup fails every trial: stop instead of looping
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
INTERRUPTED = "interrupted (Ctrl-C)"


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
    # The sampler is built again, with the trial's own seed, before every trial (step).
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        sampler=build_sampler(spec),
        pruner=build_pruner(spec),
    )
    inner = objective or get_kind(spec.kind).objective(spec, corpus, reporter)
    if corpus.synthetic and reporter and index == 0:  # after the corpus was read: one note
        reporter.log("note: SYNTHETIC corpus; scores say nothing about real speech")
    fail_dead_local(study, storage, spec.run.max_retry)  # a resumed run retries them at once
    inner.artifacts = artifacts_dir(storage_url, spec.run.artifacts)
    inner.label_names = corpus.labels  # names the confusion matrices of the dashboard's notes
    lock = ask_lock(storage, storage_url, spec.name)
    worker = _Worker(spec, study, storage, inner, lock, n_trials, deadline, reporter)
    with _interrupt_guard() as interrupted:
        try:
            return worker.loop(interrupted)
        finally:
            worker.lock.close()


@dataclass
class _Worker:
    """One process's loop over one study: what each step reads, in one place."""

    spec: StudySpec
    study: optuna.Study
    storage: RDBStorage
    inner: CvObjective
    lock: AskLock
    n_trials: int
    deadline: float | None
    reporter: TrialReporter | None
    host: str = field(default_factory=worker_id)
    ran_here: list[int] = field(default_factory=list)
    seed: int | None = None  # the sampler's seed for the trial being asked
    # Trials that failed here without saying anything of the setup: queued again (a
    # Retryable error, with retries left) or ended by another worker while they ran here.
    neutral: set[int] = field(default_factory=set)
    raised: BaseException | None = None  # what the objective raised in this step

    def loop(self, interrupted: threading.Event) -> int:
        """Step until the study is done; stop on a run of failed trials (a broken setup).

        A failure queued again (a GPU out of memory, say) neither counts towards the run nor
        ends it: a setup that fails that way every time still stops, once each trial has
        used its ``max_retry`` retries."""
        ran, failed_in_a_row = 0, 0
        while True:
            if interrupted.is_set():
                raise KeyboardInterrupt
            if self.step():
                ran += 1
                number = self.ran_here[-1]
                reason = _fail_reason(self.study, number)
                if reason is None:
                    failed_in_a_row = 0
                elif number not in self.neutral:
                    failed_in_a_row += 1
                if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                    raise HpoError(
                        f"{failed_in_a_row} trials in a row failed, the last with {reason}; "
                        "finished trials are kept (see 'hpo status')"
                    )
            if self.done():
                return ran

    def done(self) -> bool:
        if self.deadline is not None and time.time() >= self.deadline:
            return True
        return _count(self.study, FINISHED) >= self.n_trials

    def step(self) -> int:
        """Run one trial, or wait for trials under way elsewhere; return trials run (0 or 1)."""
        if self.done():
            return 0
        self.lock.acquire()
        started = len(self.ran_here)
        try:
            if _count(self.study, LIVE) >= self.n_trials and not _count(
                self.study, (TrialState.WAITING,)
            ):
                self.lock.release()
                self.wait_for_others()
                return 0
            # Under the lock, the count differs for every trial created: so does the seed.
            self.seed = trial_seed(self.spec, len(self.study.get_trials(deepcopy=False)))
            self.study.sampler = build_sampler(self.spec, self.seed)
            self.raised = None
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(SurplusTrial, TrialFailed))
            except KeyboardInterrupt:
                if len(self.ran_here) > started:
                    _requeue_interrupted(
                        self.study, self.storage, self.ran_here[-1], self.spec.run.max_retry
                    )
                raise
            except (ValueError, UpdateFinishedTrialError) as e:
                if len(self.ran_here) == started or not self.taken_away(e):
                    raise
        finally:
            self.lock.release()
        if len(self.ran_here) == started:
            return 0
        self.report(self.ran_here[-1])
        return 1

    def objective(self, trial: optuna.Trial) -> float:
        """The kind's objective, once the trial is known to be within the total."""
        self.lock.release()  # the trial exists now: others may ask
        self.ran_here.append(trial.number)
        try:
            return self._run(trial)
        except BaseException as e:
            self.raised = e
            raise

    def _run(self, trial: optuna.Trial) -> float:
        # A retry's own earlier attempt may still read RUNNING for a moment (its worker
        # queues the retry before Optuna fails it): it is this trial, not one ahead of it.
        frozen = _frozen(self.study, self.storage, trial.number)
        mine = set(frozen.system_attrs.get("retry_history", ()))
        ahead = [
            t
            for t in self.study.get_trials(deepcopy=False, states=LIVE)
            if t.number < trial.number and t.number not in mine
        ]
        if len(ahead) >= self.n_trials:
            trial.set_user_attr("fail_reason", "surplus: the study already had its trials")
            raise SurplusTrial()
        trial.set_user_attr("worker", self.host)
        if "retry_of" not in trial.user_attrs:  # a retry's parameters are its original's
            trial.set_user_attr("sampler_seed", self.seed)
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            trial.set_user_attr("devices", os.environ["CUDA_VISIBLE_DEVICES"])
        try:
            return self.inner(trial)
        except TrialFailed as e:
            if e.retry:
                self.retry(trial.number, str(e))
            raise

    def retry(self, number: int, reason: str) -> None:
        """Queue trial ``number`` (failed for a cause outside its parameters) again.

        Queued while the trial is still RUNNING, before Optuna fails it: for that moment the
        study counts one trial too many (others wait), never one too few (another worker
        would start a new trial, and the retry would then be surplus)."""
        frozen = _frozen(self.study, self.storage, number)
        if frozen.state != TrialState.RUNNING:  # another worker already failed it
            return
        if queue_retry(self.study, frozen, self.spec.run.max_retry, reason):
            self.neutral.add(number)
            if self.reporter:
                self.reporter.log(f"trial {number}: its parameters are queued again")
        elif self.reporter:
            self.reporter.log(
                f"trial {number}: not queued again, its parameters failed "
                f"{self.spec.run.max_retry + 1} times (run.max_retry)"
            )

    def taken_away(self, error: BaseException) -> bool:
        """Whether ``error`` is this worker's trial being ended by another worker while it
        ran (its heartbeat judged stale, say): its retry is queued, this worker goes on."""
        number = self.ran_here[-1]
        if error is self.raised and not isinstance(error, UpdateFinishedTrialError):
            return False  # the objective's own error
        t = _frozen(self.study, self.storage, number)
        if not t.state.is_finished():
            return False
        self.neutral.add(number)
        if self.reporter:
            why = t.user_attrs.get("fail_reason") or "its heartbeat was judged stale"
            self.reporter.log(
                f"trial {number} was ended by another worker while it ran here ({why}); "
                "its retry is queued, going on"
            )
        return True

    def wait_for_others(self) -> None:
        """The rest are under way (here, elsewhere, or in a crashed run whose heartbeat has
        stopped): wait, and re-queue the crashed ones."""
        run = self.spec.run
        time.sleep(min(run.heartbeat_interval, 5))
        optuna.storages.fail_stale_trials(self.study)
        fail_dead_local(self.study, self.storage, run.max_retry)
        fail_orphans(self.study, self.storage, run.grace_period, run.max_retry)

    def report(self, number: int) -> None:
        """One line on the console for trial ``number``, which just finished here."""
        if not self.reporter:
            return
        metric = self.spec.objective.metric
        (t,) = [t for t in self.study.get_trials(deepcopy=False) if t.number == number]
        best = best_of(self.study)
        state, value = t.state.name, t.value
        if t.state == TrialState.PRUNED:
            # A pruned trial's value is its last report (one fold's score under Wilcoxon):
            # show the mean of the folds it did run, named as such.
            cv = cv_value(t, metric)
            state, value = f"PRUNED ({cv.label})", cv.value
        self.reporter.trial_finished(
            t.number, state, value, best.value if best else None, _count(self.study, FINISHED)
        )


def _frozen(study: optuna.Study, storage: RDBStorage, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number`` as the storage holds it now (no cache)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))


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


def _requeue_interrupted(
    study: optuna.Study, storage: RDBStorage, number: int, max_retry: int
) -> None:
    """Ctrl-C stopped trial ``number``: make sure it is failed (a Ctrl-C landing in Optuna's
    own clean-up can leave it RUNNING) and queue it again, so a resumed run retries its
    parameters."""
    trial = _frozen(study, storage, number)
    if trial.state == TrialState.RUNNING:
        fail_and_retry(study, storage, [number], max_retry, INTERRUPTED)
    elif trial.state == TrialState.FAIL:  # Optuna failed it on the KeyboardInterrupt
        queue_retry(study, trial, max_retry, INTERRUPTED)
