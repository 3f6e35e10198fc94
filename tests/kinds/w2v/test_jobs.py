"""``hpo run --jobs N``: the parent process builds nothing on a GPU."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from click.testing import CliRunner

from hpo.cli import cli
from tests.helpers import write_spec
from tests.kinds.w2v.conftest import three_fold_corpus
from tests.kinds.w2v.settings import MAX_SECONDS, TINY_LAYERS


@pytest.mark.slow  # three spawned processes, each importing torch and transformers
def test_the_parent_of_several_workers_never_starts_cuda(
    tmp_path: Path, w2v_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = three_fold_corpus(w2v_corpus, tmp_path / "corpus")  # no layer cache yet
    spec = write_spec(
        tmp_path / "probe.toml",
        base="w2v-probe",
        data={"corpus": str(corpus), "folds": 3},
        pruner={"type": "none"},  # on 3 folds the Wilcoxon pruner could never fire
        model={"name": "tiny"},
        space=TINY_LAYERS,
        training={"epochs": 2.0, "max_seconds": MAX_SECONDS, "tensorboard_dir": str(tmp_path)},
    )

    def no_cuda_here() -> None:
        raise AssertionError("the parent of the workers started CUDA")

    # As on a GPU machine, in this process only: whatever would start CUDA here fails (the
    # caches used to be built here, on cuda:0, for the whole run). Spawned processes are
    # fresh: on this machine they find no GPU and build on the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "_lazy_init", no_cuda_here)
    db = tmp_path / "s.db"
    res = CliRunner().invoke(
        cli,
        ["run", "--study", str(spec), "--n-trials", "2", "--jobs", "2", "--storage", str(db)],
    )
    assert res.exit_code == 0, res.output
    study = optuna.load_study(study_name="w2v-probe", storage=f"sqlite:///{db}")
    assert sum(t.state.is_finished() for t in study.trials) == 2
    # The layer cache was built once, before the workers, by the set-up process.
    assert len(list((corpus / "cache" / "layers").iterdir())) == 1
