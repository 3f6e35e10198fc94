"""A range edge is not a dead end (issue #27, item 4): the edge warning prints the command
that widens the range; that command, run as printed, writes a copied study file and a
study holding every finished trial, and `hpo run` continues it beyond the old edge."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

import optuna
import pytest
import tomli_w
from click.testing import CliRunner
from optuna.distributions import FloatDistribution, IntDistribution

from hpo.cli import cli
from hpo.study.widen import widened_bound
from tests.helpers import write_spec

OLD_HIGH = 0.1


def _invoke(line: str, cwd: Path) -> str:
    """A command line as hpo prints it ('hpo ...'), run in-process from ``cwd``."""
    args = shlex.split(line)
    assert args[0] == "hpo"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        res = CliRunner().invoke(cli, args[1:])
    assert res.exit_code == 0, res.output
    return res.output


def _edge_spec(tmp_path: Path, prepared: Path) -> Path:
    """A linear SVM study on librosa features whose C range stops at 0.1, below where the
    synthetic corpus's best C lies (about 1 to 3): CV accuracy rises towards its upper edge."""
    spec = write_spec(
        tmp_path / "edge.toml",
        name="edge",
        data={"corpus": str(prepared)},
        pruner={"type": "none"},
        sampler={"n_startup_trials": 3},  # TPE models the space from the copied trials on
    )
    raw = tomllib.loads(spec.read_text())
    raw["space"] = {
        "feature_set": {"type": "categorical", "choices": ["librosa"]},
        "speaker_norm": {"type": "categorical", "choices": [True]},
        "kernel": {"type": "categorical", "choices": ["linear"]},
        "C": {"type": "float", "low": 0.01, "high": OLD_HIGH, "log": True},
    }
    spec.write_text(tomli_w.dumps(raw))
    return spec


@pytest.fixture
def at_edge(tmp_path: Path, prepared: Path) -> Path:
    """The study of ``_edge_spec`` after five trials, its best at C's upper edge."""
    spec = _edge_spec(tmp_path, prepared)
    db = tmp_path / "s.db"
    study = optuna.create_study(study_name="edge", storage=f"sqlite:///{db}", direction="maximize")
    for c in (0.012, 0.02, 0.03, 0.05, 0.095):
        study.enqueue_trial({"kernel": "linear", "C": c})
    res = CliRunner().invoke(
        cli, ["run", "--study", str(spec), "--n-trials", "5", "--storage", str(db)]
    )
    assert res.exit_code == 0, res.output
    assert study.best_params["C"] == 0.095  # the upper 5% of log10 [-2, -1]: an edge
    return db


@pytest.mark.slow  # two runs of an SVM study: 10 to 20 s
def test_the_printed_command_widens_and_the_study_goes_on_beyond_the_old_edge(
    at_edge: Path, tmp_path: Path
) -> None:
    db = at_edge
    out = _invoke(f"hpo status --storage {db}", tmp_path)
    # [0.01, 0.1] spans one decade: the upper bound moves up one (at least one).
    (warning,) = [ln for ln in out.splitlines() if "is at the upper edge" in ln]
    command = warning.split("widen the range: ")[1]
    assert command == f"hpo study widen --study edge --storage {db} --param C --high 1"
    report = json.loads(_invoke(f"hpo status --storage {db} --json", tmp_path))[0]
    assert [w["command"] for w in report["warnings"] if w["kind"] == "edge"] == [command]

    out = _invoke(command, tmp_path)
    written = tmp_path / "studies" / "edge-wide.toml"
    assert out.splitlines()[0] == "wrote studies/edge-wide.toml: C in [0.01, 1] (was [0.01, 0.1])"
    new_spec = tomllib.loads(written.read_text())
    assert new_spec["name"] == "edge-wide" and new_spec["space"]["C"]["high"] == 1.0
    # The budget goes past the copied trials (half the old budget of 100: 50 more).
    assert new_spec["budget"]["n_trials"] == 55
    run_line = out.splitlines()[-1].split("continue it: ")[1]
    assert run_line == f"hpo run --study studies/edge-wide.toml --storage {db}"

    old = optuna.load_study(study_name="edge", storage=f"sqlite:///{db}")
    new = optuna.load_study(study_name="edge-wide", storage=f"sqlite:///{db}")
    # Every finished trial is in the new study, with its value, per-fold scores, reports and
    # times, under the widened distribution; the old study is untouched.
    assert len(old.trials) == 5 and len(new.trials) == 5
    for a, b in zip(old.trials, new.trials, strict=True):
        assert (b.number, b.state, b.value, b.params) == (a.number, a.state, a.value, a.params)
        assert b.user_attrs["fold_uar"] == a.user_attrs["fold_uar"]
        assert b.intermediate_values == a.intermediate_values
        assert b.datetime_complete == a.datetime_complete
        assert b.distributions["C"] == FloatDistribution(0.01, 1.0, log=True)
        assert a.distributions["C"] == FloatDistribution(0.01, OLD_HIGH, log=True)
    assert new.user_attrs["widened_from"]["from"] == [0.01, OLD_HIGH]

    # `hpo run` as printed continues the copy (no --allow-changed-spec: it is its own study),
    # here for 4 more trials, which TPE draws from the widened range: beyond the old edge.
    _invoke(f"{run_line} --n-trials 9", tmp_path)
    new = optuna.load_study(study_name="edge-wide", storage=f"sqlite:///{db}")
    assert [t.number for t in new.trials] == list(range(9))
    assert [t.params["C"] for t in new.trials[:5]] == [t.params["C"] for t in old.trials]
    assert any(t.params["C"] > OLD_HIGH for t in new.trials[5:])


def test_widen_refuses_what_does_not_widen_and_leaves_nothing(
    tmp_path: Path, prepared: Path
) -> None:
    db = tmp_path / "s.db"
    study = optuna.create_study(study_name="edge", storage=f"sqlite:///{db}", direction="maximize")
    spec = tomllib.loads(_edge_spec(tmp_path, prepared).read_text())
    study.set_user_attr("spec", spec)
    c = {"C": FloatDistribution(0.01, 0.1, log=True)}
    study.add_trial(optuna.trial.create_trial(value=0.5, params={"C": 0.05}, distributions=c))
    empty = optuna.create_study(study_name="empty", storage=f"sqlite:///{db}")
    empty.set_user_attr("spec", spec)
    base = ["study", "widen", "--study", "edge", "--storage", str(db)]
    cases = [
        (["--study", "empty", "--param", "C", "--high", "1"], "no finished trials to carry over"),
        (["--param", "C", "--high", "0.05"], "--low/--high: [0.01, 0.05] does not widen C's range"),
        (["--param", "C"], "--low/--high: [0.01, 0.1] does not widen C's range [0.01, 0.1]"),
        (["--param", "kernel", "--high", "10"], "--param kernel: not a numeric parameter"),
        (["--param", "C", "--low", "0"], "[space.C]: a log scale needs low > 0"),
        (["--study", "nope", "--param", "C", "--high", "1"], "no study named 'nope'"),
    ]
    for extra, needle in cases:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(tmp_path)
            res = CliRunner().invoke(cli, base + extra)
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert needle in res.output
    # Nothing written: no study file, no new study.
    names = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")]
    assert sorted(names) == ["edge", "empty"]
    assert not (tmp_path / "studies").exists()


def test_the_suggested_bound() -> None:
    # A log range grows by half its decades, at least one; a linear one by half its width,
    # never across zero; an int stays an int.
    assert widened_bound(FloatDistribution(0.01, 1000.0, log=True), "upper") == 1e5
    assert widened_bound(FloatDistribution(0.001, 3.0, log=True), "lower") == 1e-5
    assert widened_bound(FloatDistribution(1.0, 2.0, log=True), "upper") == 20.0
    assert widened_bound(FloatDistribution(0.0, 1.0), "upper") == 1.5
    assert widened_bound(FloatDistribution(0.2, 1.0), "lower") == 0
    assert widened_bound(FloatDistribution(0.0, 1.0), "lower") is None
    assert widened_bound(IntDistribution(2, 4), "lower") == 1
    assert widened_bound(IntDistribution(2, 5), "upper") == 7
