"""The epoch stage judges a trial only once every trial's warm-up is over: before that it
would compare trials still warming up with trials already at their full rate. The longest
warm-up is the longest run's (searched epochs), after the longest head-only phase."""

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
        t.set_user_attr(CURVE, [0.9] * 30)
        study.tell(t, 0.9)
    screen = FoldGuard(study.ask(), spec).screen(FOLD_0)
    assert screen is not None
    return next((e for e in range(1, 31) if screen.after_epoch(e, 0.0)), None)


def _w2v(tmp_path: Path, space: dict, **sections) -> Path:
    """studies/w2v.toml judged from epoch 2 at the earliest, with ``space`` in place of its
    searched length and head-only phase (10 epochs, none, unless ``space`` searches them)."""
    path = write_spec(tmp_path / "s.toml", base="w2v", pruner={"epoch_warmup": 2}, **sections)
    raw = tomllib.loads(path.read_text())
    for key in ("epochs", "head_only_ratio"):
        del raw["space"][key]
    raw["space"].update(space)
    raw["training"] |= {"epochs": 10.0, "head_only_ratio": 0.0} | sections.get("training", {})
    path.write_text(tomli_w.dumps(raw))
    return path


def test_the_shipped_study_is_judged_after_its_longest_run_s_warm_up(tmp_path: Path) -> None:
    # studies/w2v.toml: the backbone frozen for up to 0.2 of the updates, then warmed up over
    # up to 0.3 of the rest, in runs of up to 20 epochs: over after 0.44 x 20 = 8.8 epochs.
    path = write_spec(tmp_path / "s.toml", base="w2v")
    assert _first_stop(path) == 9


@pytest.mark.parametrize(
    ("space", "first"),
    [
        # Warm-ups drawn up to 0.3 of 10 epochs: over after epoch 3.
        ({"warmup_ratio": {"type": "float", "low": 0.05, "high": 0.3}}, 4),
        ({"warmup_ratio": {"type": "float", "low": 0.05, "high": 0.25}}, 3),
        ({"warmup_ratio": {"type": "categorical", "choices": [0.1, 0.15]}}, 2),  # the floor
        # Searched epochs: the longest run's warm-up ends last (0.3 x 20 = 6 epochs), so a
        # run of 10 is never compared while a run of 20 still warms up.
        ({"epochs": {"type": "int", "low": 5, "high": 20, "step": 5}}, 7),
        ({"epochs": {"type": "categorical", "choices": [30, 10]}}, 10),
        # A head-only phase delays the backbone's warm-up: 0.5 + 0.3 x 0.5 of 10 epochs.
        ({"head_only_ratio": {"type": "float", "low": 0.0, "high": 0.5}}, 7),
    ],
)
def test_the_stage_first_judges_after_the_longest_searched_warm_up(
    tmp_path: Path, space: dict, first: int
) -> None:
    assert _first_stop(_w2v(tmp_path, space)) == first


def test_a_fixed_warm_up_sets_the_first_judged_epoch(tmp_path: Path) -> None:
    path = _w2v(tmp_path, {}, training={"warmup_ratio": 0.5, "hold_ratio": 0.2})
    raw = tomllib.loads(path.read_text())
    del raw["space"]["warmup_ratio"]  # not searched: every trial warms up over 5 epochs
    path.write_text(tomli_w.dumps(raw))
    assert _first_stop(path) == 6


def test_a_fixed_head_only_phase_delays_the_first_judged_epoch(tmp_path: Path) -> None:
    # Frozen for 0.4 of 10 epochs, then warmed up over 0.3 of the other 6: over after 5.8.
    assert _first_stop(_w2v(tmp_path, {}, training={"head_only_ratio": 0.4})) == 6
