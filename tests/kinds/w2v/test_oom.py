"""A GPU out of memory in a fold is not the configuration's fault: the trial fails with its
reason, to be queued again, and the fold's model is gone before memory is given back."""

from __future__ import annotations

import weakref
from pathlib import Path

import optuna
import pytest
import torch

from hpo.corpus.manifest import load_corpus
from hpo.kinds import get_kind, load_spec
from hpo.trial.cv import TrialFailed
from tests.helpers import write_spec
from tests.kinds.w2v.settings import MAX_SECONDS, TINY_LAYERS


def test_out_of_memory_fails_the_trial_for_a_retry_after_freeing_its_model(
    tmp_path: Path, w2v_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpo.kinds.w2v.probe import train

    spec = write_spec(
        tmp_path / "probe.toml",
        base="w2v-probe",
        data={"corpus": str(w2v_corpus)},
        model={"name": "tiny"},
        space=TINY_LAYERS,
        training={"epochs": 2.0, "max_seconds": MAX_SECONDS, "tensorboard_dir": str(tmp_path)},
    )
    objective = get_kind("w2v").objective(load_spec(spec), load_corpus(w2v_corpus))
    real, folds, heads = train.train_head, [], []
    gpu_in_use = [False]  # as on a GPU from the out-of-memory on: memory is given back

    def second_fold_runs_out(head, inputs, labels, train_idx, valid_idx, t, monitor, *a):
        folds.append(monitor.fold)
        if len(folds) == 1:
            return real(head, inputs, labels, train_idx, valid_idx, t, monitor, *a)
        heads.append(weakref.ref(head))
        gpu_in_use[0] = True
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    alive_when_emptied: list[bool] = []
    monkeypatch.setattr(train, "train_head", second_fold_runs_out)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: gpu_in_use[0])
    monkeypatch.setattr(
        torch.cuda, "empty_cache", lambda: alive_when_emptied.append(heads[-1]() is not None)
    )
    study = optuna.create_study(direction="maximize")
    with pytest.raises(TrialFailed) as failed:
        study.optimize(objective, n_trials=1)
    assert failed.value.retry  # the worker queues the same parameters again
    (trial,) = study.trials
    # FAIL, not PRUNED: the sampler is not told the configuration is bad.
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == f"GPU out of memory at fold {folds[1]}"
    assert "pruned_reason" not in trial.user_attrs
    # The cache was emptied once, after the fold's model was released (not while the
    # failed fold's traceback still held it).
    assert alive_when_emptied == [False]
