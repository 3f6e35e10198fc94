"""``[data] folds``: K speaker folds or "loso", checked when the study file is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.errors import SpecError
from hpo.kinds import load_spec
from tests.helpers import write_spec


def test_folds_take_a_count_or_loso(tmp_path: Path) -> None:
    assert load_spec(write_spec(tmp_path / "a.toml", data={"folds": "loso"})).data.folds == "loso"
    assert load_spec(write_spec(tmp_path / "b.toml", data={"folds": 10})).data.folds == 10


@pytest.mark.parametrize(
    ("folds", "needle"),
    [("lso", "'folds' must be an integer or one of 'loso', 'file', got 'lso'"), (1, "at least 2")],
)
def test_other_fold_values_name_the_key(tmp_path: Path, folds: object, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        load_spec(write_spec(tmp_path / "s.toml", data={"folds": folds}))
