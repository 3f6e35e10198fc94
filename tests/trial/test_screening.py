"""The epoch-level screening stage: compares a trial's first-fold curve with the others'."""

from __future__ import annotations

import optuna

from hpo.trial.screening import CURVE, EpochScreen, first_judged_epoch, replay


def _study_with_curves(curves: list[list[float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for c in curves:
        t = study.ask()
        t.set_user_attr(CURVE, c)
        study.tell(t, c[-1])
    return study


def test_a_trial_below_the_others_at_the_same_epoch_is_stopped() -> None:
    study = _study_with_curves([[0.3, 0.5, 0.6], [0.35, 0.55, 0.62], [0.25, 0.45, 0.58]])
    screen = EpochScreen(study.ask(), warmup=1, percentile=50, startup_trials=3)
    assert screen.after_epoch(1, 0.31) is None  # median at epoch 1 is 0.30
    reason = screen.after_epoch(2, 0.40)  # median at epoch 2 is 0.50
    assert reason is not None and "after epoch 2" in reason and "(0.500) of 3 trials" in reason
    assert screen.trial.user_attrs[CURVE] == [0.31, 0.40]  # the curve others compare with


def test_warmup_and_startup_trials_hold_the_stage_back() -> None:
    study = _study_with_curves([[0.5, 0.6], [0.5, 0.6]])
    # Fewer finished trials than epoch_startup_trials: never stops.
    assert EpochScreen(study.ask(), 1, 50, 3).after_epoch(1, 0.0) is None
    # Inside the warm-up: never stops, whatever the value.
    assert EpochScreen(study.ask(), 2, 50, 2).after_epoch(1, 0.0) is None
    # Past both: stops.
    assert EpochScreen(study.ask(), 1, 50, 2).after_epoch(1, 0.0) is not None


def test_trials_that_never_reached_this_epoch_do_not_count() -> None:
    study = _study_with_curves([[0.9], [0.9], [0.2, 0.3, 0.4], [0.2, 0.3, 0.4]])
    screen = EpochScreen(study.ask(), 1, 50, 2)
    screen.after_epoch(1, 0.95)
    screen.after_epoch(2, 0.96)
    assert screen.after_epoch(3, 0.35) is not None  # compared with the two 3-epoch curves only


def test_with_the_stage_off_the_curve_is_kept_and_nothing_is_stopped() -> None:
    study = _study_with_curves([[0.9, 0.9], [0.9, 0.9]])
    screen = EpochScreen(study.ask(), 1, 50, 1, decide=False)
    assert screen.after_epoch(1, 0.0) is None and screen.after_epoch(2, 0.0) is None
    assert screen.trial.user_attrs[CURVE] == [0.0, 0.0]


def test_replay_decides_what_the_live_stage_decides() -> None:
    curves = [
        [0.30, 0.40, 0.50],
        [0.20, 0.45, 0.55],
        [0.10, 0.20, 0.30],  # below both at epoch 1: stopped there
        [0.35, 0.38, 0.60],  # fine at 1, below the median at 2 (0.425)
        [0.40, 0.50, 0.65],
        [],  # never reached the screening fold (pruned earlier): counts for nothing
    ]
    stops = replay(curves, warmup=1, percentile=50, startup_trials=2)
    assert stops == [None, None, 1, 2, None, None]
    # The same trials run live, in the same order, with the stage deciding.
    study = optuna.create_study(direction="maximize")
    live = []
    for curve in curves:
        trial = study.ask()
        screen = EpochScreen(trial, 1, 50, 2)
        stop = next((e for e, v in enumerate(curve, 1) if screen.after_epoch(e, v)), None)
        live.append(stop)
        if stop is None:
            study.tell(trial, curve[-1] if curve else 0.0)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert live == stops
    # A longer warm-up: only the last epoch decides, and trial 3 passes it.
    assert replay(curves, warmup=3, percentile=50, startup_trials=2) == [None, None, 3] + [None] * 3


def test_the_first_judged_epoch_comes_after_the_longest_warm_up() -> None:
    # A warm-up of 0.3 x 10 epochs ends with epoch 3: epoch 4 is the first all trials spend
    # (partly) at their full rate; epoch_warmup is the floor.
    assert first_judged_epoch(2, 0.3, 10.0) == 4
    assert first_judged_epoch(2, 0.25, 10.0) == 3  # ends inside epoch 3
    assert first_judged_epoch(2, 0.3, 30.0) == 10
    assert first_judged_epoch(5, 0.3, 10.0) == 5
    assert first_judged_epoch(1, 0.3, 1.0) == 1
