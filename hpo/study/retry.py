"""hpo's retry of a failed trial: the same parameters in a new WAITING trial, a clean record.

Optuna's ``RetryHeartbeatStaleTrialCallback`` copies the dead attempt's user attributes into
the retry, so a retry started with the dead attempt's ``worker`` (which the dead-worker
sweep then judged by, failing a retry a live worker had just taken), its ``fail_reason``
(shown even once the retry completed) and its per-fold scores. A retry here carries only
what it retries (``retry_of``, the failed trial's number) and why (``retry_reason``); the
system attributes Optuna's retry counts by (``failed_trial``, the first attempt, and
``retry_history``) are kept, so ``max_retry`` and Optuna's ``retried_trial_number`` /
``retry_history`` read as before.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState


def queue_retry(
    study: optuna.Study, trial: FrozenTrial, max_retry: int | None, reason: str
) -> bool:
    """Queue ``trial``'s parameters again as a WAITING trial; False when it has already been
    retried ``max_retry`` times (Optuna's count: ``max_retry`` retries after the first try)."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if max_retry is not None and max_retry < len(history):
        return False
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={"retry_of": trial.number, "retry_reason": reason},
            system_attrs={
                "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                "retry_history": history,
            },
        )
    )
    return True


class CleanRetry:
    """The storage's heartbeat callback: a trial whose heartbeat stopped is queued again with
    :func:`queue_retry` (Optuna has already failed it; its record stays as it was)."""

    def __init__(self, max_retry: int | None) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        worker = trial.user_attrs.get("worker", "unknown")
        reason = trial.user_attrs.get("fail_reason") or f"heartbeat stopped (worker {worker})"
        queue_retry(study, trial, self.max_retry, str(reason))
