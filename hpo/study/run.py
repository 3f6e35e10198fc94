"""``hpo run``: check everything, create or resume the study, build the shared caches once,
then run the workers (this process, or ``--jobs`` spawned processes; then the caches are
built in a spawned process too, and this one never starts CUDA).

Workers are processes; on PostgreSQL the same command on several machines joins the same
study (Optuna's own distributed mode).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from hpo.config.paths import WORKER_INDEX_VAR
from hpo.config.study import StudySpec
from hpo.config.urls import redact
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import Corpus, load_corpus
from hpo.errors import HpoError
from hpo.kinds import get_kind
from hpo.study.open import open_study
from hpo.study.warm import Enqueued, WarmStart, load_source, warm_start
from hpo.study.worker import FINISHED, _count, best_of, run_worker
from hpo.util.progress import TrialReporter


@dataclass
class RunSummary:
    study: str
    storage: str
    finished: int
    ran: int
    best_value: float | None
    best_params: dict[str, Any] | None
    synthetic: bool
    warm: Enqueued | None = None  # what --warm-start queued


def _pin(device: str) -> None:
    """This process sees GPU ``device`` only, as cuda:0: set before CUDA starts here (torch
    may be imported already: CUDA reads the variable when it starts, not at import)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise HpoError("--devices: CUDA already started in this process; cannot pin it now")
    os.environ["CUDA_VISIBLE_DEVICES"] = device


def _worker_entry(
    spec: StudySpec,
    storage_url: str,
    n_trials: int,
    deadline: float | None,
    index: int,
    device: str | None = None,
) -> None:
    os.environ[WORKER_INDEX_VAR] = str(index)
    if device is not None:
        _pin(device)  # a spawned process: nothing has touched CUDA yet
    reporter = TrialReporter(n_trials, 0, spec.objective.metric, prefix=f"[worker {index}] ")
    if device is not None:
        reporter.log(f"pinned to CUDA_VISIBLE_DEVICES={device}")
    try:
        run_worker(spec, storage_url, n_trials, deadline, index, reporter)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except HpoError as e:
        reporter.log(f"hpo: error: {e}")
        raise SystemExit(2) from None


def spread_workers(
    jobs: int, devices: list[str] | None, per_device: int | None
) -> tuple[int, list[str] | None]:
    """``--jobs``, ``--devices`` and ``--per-device K`` as (workers, one device per worker).

    ``--devices 0,1 --per-device 4`` is 8 workers, four trials at once on each GPU (worker
    i on the i-th entry of ``0,0,0,0,1,1,1,1``); without ``--per-device`` worker i uses
    device i mod N, as before.
    """
    if per_device is None:
        return jobs, devices
    if not devices:
        raise HpoError("--per-device needs --devices (which GPUs to fill)")
    wanted = per_device * len(devices)
    if jobs not in (1, wanted):
        raise HpoError(
            f"--jobs {jobs} contradicts --devices {','.join(devices)} x --per-device "
            f"{per_device} = {wanted} workers; give one or the other"
        )
    return wanted, [d for d in devices for _ in range(per_device)]


def run_study(
    spec: StudySpec,
    storage_url: str,
    n_trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    allow_changed: bool = False,
    devices: list[str] | None = None,
    warm: WarmStart | None = None,
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
        warm: another study whose best complete trials are queued first (hpo.study.warm).
    """
    n_trials = spec.budget.n_trials if n_trials is None else n_trials
    timeout = timeout if timeout is not None else spec.budget.timeout
    if n_trials < 1:
        raise HpoError("--n-trials must be at least 1")
    if jobs < 1:
        raise HpoError("--jobs must be at least 1")
    if jobs == 1 and devices:
        _pin(devices[0])  # first: the checks below may load torch, never start CUDA
    corpus = _checked_corpus(spec)
    source = load_source(warm, storage_url) if warm else None  # before anything is created
    study = open_study(spec, storage_url, corpus, allow_changed)
    queued = warm_start(study, spec.space, storage_url, warm.source, source) if warm else None
    deadline = time.time() + timeout if timeout else None
    before = _count(study, FINISHED)
    # Every worker, here or on other machines, points at the same corpus path in the spec.
    spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, corpus=str(corpus.root)))
    if jobs == 1 or before >= n_trials:
        # At the total already, one pass here (it fails this machine's dead trials and runs
        # none) instead of workers that would only start, import and exit.
        with TrialReporter(n_trials, before, spec.objective.metric) as reporter:
            run_worker(spec, storage_url, n_trials, deadline, 0, reporter, corpus)
    else:
        _prepare_caches(spec, devices[0] if devices else None)
        _run_processes(spec, storage_url, n_trials, deadline, jobs, devices)
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
        warm=queued,
    )


def _checked_corpus(spec: StudySpec) -> Corpus:
    """Everything that can be wrong, checked before the storage is touched: a bad corpus or
    model never leaves an empty study database behind."""
    corpus = load_corpus(spec.data.corpus)
    get_kind(spec.kind).check(spec)
    folds = corpus_folds(corpus, spec.data.folds)
    spec.pruner.check_folds(len(folds), f"{spec.path}: [pruner]")  # loso: K known only now
    return corpus


def _prepare_caches(spec: StudySpec, device: str | None) -> None:
    """Feature and layer caches, built once before the workers start, with all cores: N
    workers each building them on a cold cache made --jobs 4 four times slower than
    --jobs 1. (One worker in this process builds them itself, once.) Built in a process of
    their own, pinned like worker 0: this one must never start CUDA, or it would hold a
    context and memory on the first GPU, unpinned, for the whole run."""
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_prepare_entry, name="hpo-setup", args=(spec, device))
    proc.start()
    try:
        proc.join()
    except KeyboardInterrupt:
        proc.join(timeout=30)
        raise
    if proc.exitcode != 0:
        raise HpoError(
            f"building the caches failed (exit code {proc.exitcode}); see the message above"
        )


def _prepare_entry(spec: StudySpec, device: str | None) -> None:
    if device is not None:
        _pin(device)
    with TrialReporter(1, 0, spec.objective.metric, prefix="[setup] ") as r:
        try:
            get_kind(spec.kind).prepare(spec, load_corpus(spec.data.corpus), r)
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except HpoError as e:
            r.log(f"hpo: error: {e}")
            raise SystemExit(2) from None


def _run_processes(
    spec: StudySpec,
    storage_url: str,
    n_trials: int,
    deadline: float | None,
    jobs: int,
    devices: list[str] | None,
) -> None:
    """``jobs`` spawned workers; worker i pinned to ``devices[i % len(devices)]``."""
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
