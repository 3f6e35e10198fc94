"""Creating or resuming a study and running its trials, in one process or many.

``n_trials`` is the total the study ends with (finished = complete + pruned), not an
increment. Every worker loops: run a trial while fewer than ``n_trials`` are finished or
under way; when the remaining ones are all under way elsewhere, wait and let Optuna's
heartbeat fail (and re-queue) those of crashed workers. Workers are processes, and on
PostgreSQL the same command on several machines joins the same study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo.corpus.manifest import Corpus, load_corpus
from hpo.cv import make_folds
from hpo.errors import HpoError, StorageError
from hpo.locks import AskLock, ask_lock
from hpo.orphans import fail_orphans
from hpo.progress import TrialReporter
from hpo.provenance import git_revision, package_versions
from hpo.spec import StudySpec
from hpo.storage import open_storage, redact

# Our reporter says per trial what Optuna's log would; Optuna's own warning for a trial
# stopped by Ctrl-C carries a traceback the user should not see.
optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class SurplusTrial(Exception):
    """A trial started after the study already had ``n_trials`` trials finished or running."""


@dataclass
class RunSummary:
    study: str
    storage: str
    finished: int
    ran: int
    best_value: float | None
    best_params: dict[str, Any] | None
    synthetic: bool


def build_sampler(spec: StudySpec, offset: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler; the seed is offset by the trials so far and the worker index, so a
    resumed or parallel run never replays the same random start-up points."""
    s = spec.sampler
    seed = None if s.seed is None else s.seed + offset
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=s.n_startup_trials,
        multivariate=s.multivariate,
        group=s.group,
        constant_liar=s.constant_liar,
    )


def build_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.type == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(
            p_threshold=p.p_threshold, n_startup_steps=p.n_startup_steps
        )
    if p.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_startup_steps
        )
    return optuna.pruners.NopPruner()


def _provenance(spec: StudySpec, corpus: Corpus) -> dict[str, Any]:
    folds = make_folds(corpus, spec.data.folds)
    extra = ("torch", "transformers") if spec.kind == "w2v" else ()
    return {
        "kind": spec.kind,
        "metric": spec.objective.metric,
        "spec_hash": spec.hash,
        "spec": json.loads(json.dumps(spec.raw, default=str)),
        "manifest_hash": corpus.manifest_hash,
        "corpus_path": str(corpus.root),
        "corpus_synthetic": corpus.synthetic,
        "corpus_clips": len(corpus.clips),
        "fold_actors": {str(f.index): list(f.valid_actors) for f in folds},
        "versions": package_versions(extra),
        "git_revision": git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _changed_sections(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        k
        for k in keys
        if k not in ("budget", "run", "description")
        and json.dumps(old.get(k), sort_keys=True, default=str)
        != json.dumps(new.get(k), sort_keys=True, default=str)
    ]


def open_study(
    spec: StudySpec, storage_url: str, corpus: Corpus, allow_changed: bool = False
) -> optuna.Study:
    """Create the study, or resume it after checking it is the same study on the same data."""
    storage = open_storage(storage_url, spec.run)
    # Creating the study and stamping its provenance are separate writes: under the lock the
    # workers share, a run joining at the same moment never sees a half-stamped study.
    lock = ask_lock(storage, storage_url, spec.name)
    try:
        lock.acquire()
        return _create_or_check(storage, storage_url, spec, corpus, allow_changed)
    finally:
        lock.close()


def _create_or_check(
    storage: optuna.storages.BaseStorage,
    storage_url: str,
    spec: StudySpec,
    corpus: Corpus,
    allow_changed: bool,
) -> optuna.Study:
    direction = spec.objective.direction
    try:
        study = optuna.create_study(
            storage=storage, study_name=spec.name, direction=direction, load_if_exists=True
        )
    except ValueError as e:  # e.g. an existing study with another direction
        raise StorageError(f"study '{spec.name}': {e}") from None
    attrs = study.user_attrs
    if "spec_hash" not in attrs:
        for k, v in _provenance(spec, corpus).items():
            study.set_user_attr(k, v)
        return study
    if study.direction.name.lower() != direction:
        raise StorageError(
            f"study '{spec.name}' in {redact(storage_url)} is "
            f"{study.direction.name.lower()}d, the study file says {direction}"
        )
    if attrs["spec_hash"] != spec.hash and not allow_changed:
        changed = _changed_sections(attrs.get("spec", {}), spec.raw)
        raise StorageError(
            f"study '{spec.name}' was created from a different definition "
            f"(changed: {', '.join(changed) or 'settings'}); rerun with --allow-changed-spec "
            "to continue it anyway, or set a new 'name' in the study file"
        )
    if attrs.get("manifest_hash") != corpus.manifest_hash and not allow_changed:
        raise StorageError(
            f"study '{spec.name}' was run on another corpus (manifest {attrs.get('manifest_hash')},"
            f" now {corpus.manifest_hash} at {corpus.root}); rerun with --allow-changed-spec "
            "to continue it anyway, or use a new study name"
        )
    if attrs["spec_hash"] != spec.hash or attrs.get("manifest_hash") != corpus.manifest_hash:
        history = list(attrs.get("spec_changes", []))
        history.append(
            {
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "spec_hash": spec.hash,
                "manifest_hash": corpus.manifest_hash,
            }
        )
        study.set_user_attr("spec_changes", history)
        study.set_user_attr("spec_hash", spec.hash)
        study.set_user_attr("spec", json.loads(json.dumps(spec.raw, default=str)))
        study.set_user_attr("manifest_hash", corpus.manifest_hash)
    return study


def make_objective(spec: StudySpec, corpus: Corpus, reporter: TrialReporter | None):
    if spec.kind == "svm":
        from hpo.svm.objective import SvmObjective

        return SvmObjective(spec, corpus, reporter)
    from hpo.w2v.objective import W2vObjective

    return W2vObjective(spec, corpus, reporter)


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def best_of(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def _worker(
    spec: StudySpec,
    storage_url: str,
    n_trials: int,
    deadline: float | None,
    index: int,
    reporter: TrialReporter | None,
    corpus: Corpus | None = None,
) -> int:
    """Run trials until the study has ``n_trials`` finished ones; returns how many ran here."""
    corpus = corpus or load_corpus(spec.data.corpus)
    storage = open_storage(storage_url, spec.run)
    offset = storage.get_n_trials(storage.get_study_id_from_name(spec.name)) + 1000 * index
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        sampler=build_sampler(spec, offset),
        pruner=build_pruner(spec),
    )
    inner = make_objective(spec, corpus, reporter)
    host = f"{socket.gethostname()}:{os.getpid()}"

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

    ran = 0
    with _interrupt_guard() as interrupted:
        try:
            while True:
                if interrupted.is_set():
                    raise KeyboardInterrupt
                ran += _step(study, objective, spec, n_trials, deadline, reporter, lock, ran_here)
                if _done(study, n_trials, deadline):
                    break
        finally:
            lock.close()
    return ran


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
            fail_orphans(study, spec.run.grace_period, spec.run.max_retry)
            return 0
        before = {t.number for t in study.get_trials(deepcopy=False)}
        try:
            study.optimize(objective, n_trials=1, catch=(SurplusTrial,))
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


def _worker_entry(
    spec: StudySpec,
    storage_url: str,
    n_trials: int,
    deadline: float | None,
    index: int,
    device: str | None = None,
) -> None:
    if device is not None:
        # Before torch is imported in this process: the worker sees one GPU, as cuda:0.
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    reporter = TrialReporter(n_trials, 0, spec.objective.metric, prefix=f"[worker {index}] ")
    try:
        _worker(spec, storage_url, n_trials, deadline, index, reporter)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except HpoError as e:
        reporter.log(f"hpo: error: {e}")
        raise SystemExit(2) from None


def run_study(
    spec: StudySpec,
    storage_url: str,
    n_trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    allow_changed: bool = False,
    devices: list[str] | None = None,
) -> RunSummary:
    """Run (or resume) ``spec`` until the study has ``n_trials`` finished trials.

    Args:
        spec: the validated study file (with CLI overrides applied).
        storage_url: SQLAlchemy URL; several processes or machines may share it.
        n_trials: total finished trials to reach (default: the study file's budget).
        timeout: stop starting new trials after this many seconds.
        jobs: worker processes on this machine.
        allow_changed: continue a study whose definition or corpus changed.
        devices: GPU ids; worker i is pinned to ``devices[i % len(devices)]``.
    """
    n_trials = spec.budget.n_trials if n_trials is None else n_trials
    timeout = timeout if timeout is not None else spec.budget.timeout
    if n_trials < 1:
        raise HpoError("--n-trials must be at least 1")
    if jobs < 1:
        raise HpoError("--jobs must be at least 1")
    corpus = load_corpus(spec.data.corpus)
    if spec.kind == "w2v":  # an unloadable model fails here, before the study is touched
        from hpo.w2v.model import check_model

        check_model(spec.settings.model.name)
    study = open_study(spec, storage_url, corpus, allow_changed)
    deadline = time.time() + timeout if timeout else None
    before = _count(study, FINISHED)
    # Every worker, here or on other machines, points at the same corpus path in the spec.
    spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, corpus=str(corpus.root)))
    if jobs == 1:
        if devices:
            if "torch" in sys.modules:
                raise HpoError("--devices must be set before torch is loaded; use --jobs")
            os.environ["CUDA_VISIBLE_DEVICES"] = devices[0]
        with TrialReporter(n_trials, before, spec.objective.metric) as reporter:
            if corpus.synthetic:
                reporter.log("note: SYNTHETIC corpus; scores say nothing about real speech")
            _worker(spec, storage_url, n_trials, deadline, 0, reporter, corpus)
    else:
        ctx = mp.get_context("spawn")  # no fork: workers must not inherit torch/BLAS state
        procs = [
            ctx.Process(
                target=_worker_entry,
                name=f"hpo-worker-{i}",
                args=(
                    spec,
                    storage_url,
                    n_trials,
                    deadline,
                    i,
                    devices[i % len(devices)] if devices else None,
                ),
            )
            for i in range(jobs)
        ]
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            for p in procs:
                p.join(timeout=30)
            raise
        bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
        if bad:
            raise HpoError(
                f"{len(bad)} of {jobs} workers failed (exit codes {bad}); see their messages above"
            )
    best = best_of(study)
    finished = _count(study, FINISHED)
    return RunSummary(
        study=spec.name,
        storage=redact(storage_url),
        finished=finished,
        ran=finished - before,
        best_value=best.value if best else None,
        best_params=best.params if best else None,
        synthetic=corpus.synthetic,
    )
