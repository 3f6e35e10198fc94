"""The epoch stage judges a trial only once every trial's warm-up is over: before that it
would compare trials still warming up with trials already at their full rate."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
import tomli_w

from hpo.corpus.folds import Fold
from hpo.kinds import load_spec
from hpo.kinds.w2v.guard import FoldGuard
from hpo.trial.screening import CURVE
from tests.helpers import write_spec

FOLD_0 = Fold(0, np.arange(4), np.arange(4, 6), ("b",), ("a",))


def _first_stop(spec_path: Path) -> int | None:
    """The first epoch of the screening fold at which a hopeless trial (0.0 at every epoch,
    against 4 trials at 0.9) is stopped."""
    spec = load_spec(spec_path)
    study = optuna.create_study(direction="maximize")
    for _ in range(4):
        t = study.ask()
        t.set_user_attr(CURVE, [0.9] * 10)
        study.tell(t, 0.9)
    screen = FoldGuard(study.ask(), spec).screen(FOLD_0)
    assert screen is not None
    return next((e for e in range(1, 11) if screen.after_epoch(e, 0.0)), None)


@pytest.mark.parametrize(
    ("warmup", "first"),
    [
        # The shipped w2v study: warm-ups drawn up to 0.3 of 10 epochs, over after epoch 3.
        ({"type": "float", "low": 0.05, "high": 0.3}, 4),
        ({"type": "float", "low": 0.05, "high": 0.25}, 3),
        ({"type": "categorical", "choices": [0.1, 0.15]}, 2),  # epoch_warmup = 2 is the floor
    ],
)
def test_the_stage_first_judges_after_the_longest_searched_warm_up(
    tmp_path: Path, warmup: dict, first: int
) -> None:
    path = write_spec(
        tmp_path / "s.toml",
        base="w2v",
        space={"warmup_ratio": warmup},
        pruner={"epoch_warmup": 2},
    )
    assert _first_stop(path) == first


def test_a_fixed_warm_up_sets_the_first_judged_epoch(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path / "s.toml",
        base="w2v",
        training={"warmup_ratio": 0.5, "hold_ratio": 0.2},
        pruner={"epoch_warmup": 2},
    )
    raw = tomllib.loads(path.read_text())
    del raw["space"]["warmup_ratio"]  # not searched: every trial warms up over 5 epochs
    path.write_text(tomli_w.dumps(raw))
    assert _first_stop(path) == 6
