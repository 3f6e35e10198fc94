from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The tiny backbone and TensorBoard runs are written relative to the working directory."""
    root: Path = tmp_path_factory.getbasetemp() / "w2v-cwd"
    root.mkdir(exist_ok=True)
    monkeypatch.chdir(root)
    from hpo.kinds.w2v.objective import quiet_transformers

    quiet_transformers()
    return root
