"""``hpo compare``: the paired tests give exactly what scipy gives on the stored scores and
predictions, every format holds the same numbers, and what cannot be paired is refused."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from scipy.stats import binomtest, wilcoxon

from hpo.cli import cli
from hpo.corpus.manifest import load_corpus
from hpo.results.compare import holm, mcnemar_clips, min_p, verdict, wilcoxon_folds
from hpo.trial.predictions import of_trial
from tests.helpers import ONE_FEATURE_SET, write_spec

# -- the statistics, on numbers ------------------------------------------------------------


def test_wilcoxon_is_scipys_exact_test_with_the_rank_biserial_effect() -> None:
    a = [0.70, 0.72, 0.80, 0.79, 0.81, 0.75]
    b = [0.45, 0.75, 0.59, 0.59, 0.67, 0.64]
    t = wilcoxon_folds(a, b)
    assert t.p == wilcoxon(a, b, method="exact").pvalue
    # |d| ranks: 0.03 -> 1 (B higher), 0.11 -> 2, 0.14 -> 3, 0.20 -> 4.5, 0.20 -> 4.5,
    # 0.25 -> 6: r = (20 - 1) / 21.
    assert t.effect == pytest.approx(19 / 21)
    assert (t.a_better, t.b_better, t.n) == (5, 1, 6)
    assert t.diff == pytest.approx(np.mean(np.subtract(a, b)))
    # A tied fold is left out: five untied folds, the smallest p 2/32.
    tied = wilcoxon_folds([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1])
    assert tied.min_p == 2 / 32 and tied.p == pytest.approx(2 / 32)
    same = wilcoxon_folds([0.5] * 6, [0.5] * 6)
    assert same.p == 1.0 and same.effect == 0.0
    assert min_p(6) == 2 / 64


def test_mcnemar_is_an_exact_binomial_test_on_the_discordant_clips() -> None:
    a = np.array([1, 1, 1, 1, 1, 0, 0, 1, 0, 0], bool)  # 3 clips only A got right
    b = np.array([1, 0, 0, 0, 1, 1, 0, 1, 0, 0], bool)  # 1 clip only B got right
    t = mcnemar_clips(a, b)
    assert (t.a_better, t.b_better, t.n) == (3, 1, 10)
    assert t.p == binomtest(3, 4, 0.5).pvalue
    assert t.diff == pytest.approx(a.mean() - b.mean()) and t.effect == 3.0
    # Never a discordant clip: no evidence either way; the odds ratio undefined when c = 0.
    assert mcnemar_clips(a, a).p == 1.0
    assert math.isnan(mcnemar_clips(a, a & b).effect)


def test_holm_adjusts_step_down_and_keeps_the_order() -> None:
    # Sorted 0.01, 0.03, 0.04: x3 = 0.03, x2 = 0.06, x1 = 0.04 -> kept monotone: 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2]
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # 2 x 0.8 capped at 1


def test_the_verdict_never_overstates() -> None:
    close = wilcoxon_folds([0.7, 0.72, 0.8, 0.79, 0.81, 0.75], [0.71, 0.7, 0.82, 0.78, 0.8, 0.76])
    line = verdict("a", "b", "uar", close, close.p, None, None)
    assert "no significant difference at alpha = 0.05" in line and "equal" not in line
    assert "with 6 folds the smallest possible p is 0.0312" in line
    four = wilcoxon_folds([0.9, 0.9, 0.9, 0.9], [0.1, 0.2, 0.3, 0.4])
    line = verdict("a", "b", "uar", four, four.p, None, None)
    assert "smallest possible p is 0.125, so this test cannot reach alpha = 0.05" in line
    # Significant: says which scored higher and at what alpha, nothing more ("better" is
    # for the reader to judge).
    six = wilcoxon_folds([0.9] * 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    line = verdict("b", "a", "uar", six, six.p, None, None)
    assert "'b' scored higher than 'a' (Wilcoxon p = 0.0312; significant at alpha = 0.05)" in line
    # After Holm over three pairs the 6-fold minimum cannot reach alpha.
    line = verdict("b", "a", "uar", six, min(1, 3 * six.p), None, None, m=3)
    assert (
        "Holm-adjusted over 3 comparisons" in line
        and "cannot reach alpha = 0.05 after Holm" in line
    )
    assert "no significant difference" in line


# -- hpo compare on two real studies ------------------------------------------------------


def _copy(db: Path, src: str, dst: str, **attrs: object) -> optuna.Study:
    url = f"sqlite:///{db}"
    optuna.copy_study(from_study_name=src, from_storage=url, to_storage=url, to_study_name=dst)
    study = optuna.load_study(study_name=dst, storage=url)
    for k, v in attrs.items():
        study.set_user_attr(k, v)
    return study


@pytest.fixture(scope="module")
def two_studies(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'norm' and 'raw': two SVM studies on the session corpus, 2 trials each, that differ
    only in speaker normalisation (same sampler seed: the same kernels and C); plus copies
    of 'norm' changed in one recorded fact each, for the refusals."""
    tmp = tmp_path_factory.mktemp("compare")
    db = tmp / "s.db"
    for name, norm in (("norm", True), ("raw", False)):
        space = {**ONE_FEATURE_SET, "speaker_norm": {"type": "categorical", "choices": [norm]}}
        spec = write_spec(
            tmp / f"{name}.toml",
            name=name,
            data={"corpus": str(prepared)},
            space=space,
            objective={"metric": "accuracy"},  # 'by-uar' below differs in its metric
        )
        res = CliRunner().invoke(
            cli, ["run", "--study", str(spec), "--n-trials", "2", "--storage", str(db)]
        )
        assert res.exit_code == 0, res.output
    norm = optuna.load_study(study_name="norm", storage=f"sqlite:///{db}")
    folds = dict(norm.user_attrs["fold_actors"])
    folds["0"], folds["1"] = folds["1"], folds["0"]
    _copy(db, "norm", "other-corpus", manifest_hash="0123456789abcdef", corpus_name="emodb")
    _copy(db, "norm", "other-folds", fold_actors=folds)
    _copy(db, "norm", "by-uar", metric="uar")
    _copy(db, "norm", "moved", corpus_path=str(tmp / "gone"))
    _copy(db, "norm", "twin")
    optuna.create_study(study_name="empty", storage=f"sqlite:///{db}")
    # A study written before clip_predictions: the same trials without them.
    old = optuna.create_study(study_name="old", storage=f"sqlite:///{db}", direction="maximize")
    for k, v in norm.user_attrs.items():
        old.set_user_attr(k, v)
    for t in norm.trials:
        attrs = {k: v for k, v in t.user_attrs.items() if k != "clip_predictions"}
        old.add_trial(
            optuna.trial.create_trial(
                value=t.value, params=t.params, distributions=t.distributions, user_attrs=attrs
            )
        )
    return db


def _compare(db: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["compare", *args, "--storage", str(db)])
    return res.exit_code, res.output


@pytest.mark.slow  # two 2-trial studies: about 8 s on 2 cores
def test_compare_gives_scipys_exact_p_values_on_the_stored_scores_and_predictions(
    two_studies: Path, prepared: Path
) -> None:
    code, out = _compare(two_studies, "norm", "raw", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    url = f"sqlite:///{two_studies}"
    best = [optuna.load_study(study_name=n, storage=url).best_trial for n in ("norm", "raw")]
    fa, fb = (t.user_attrs["fold_accuracy"] for t in best)
    wil, mcn = doc["tables"]["tests"]["rows"]
    assert wil["test"] == "Wilcoxon signed-rank" and mcn["test"] == "McNemar (exact)"
    assert wil["p"] == wilcoxon(fa, fb, method="exact", alternative="two-sided").pvalue
    assert wil["A - B"] == pytest.approx(np.mean(np.subtract(fa, fb)))
    # McNemar straight from the stored predictions and the corpus's true labels.
    y = load_corpus(prepared).label_ids
    right = []
    for t in best:
        kept = of_trial(t)
        assert kept is not None
        r = np.zeros(len(y), bool)
        r[kept.clips] = kept.pred == y[kept.clips]
        right.append(r)
    b, c = int((right[0] & ~right[1]).sum()), int((~right[0] & right[1]).sum())
    assert (mcn["A better"], mcn["B better"], mcn["n"]) == (b, c, len(y))
    assert mcn["p"] == binomtest(b, b + c, 0.5).pvalue
    # Mean ± sample std (ddof = 1) of each study's best trial, its trial number, its folds.
    rows = doc["tables"]["studies"]["rows"]
    for row, t, f in zip(rows, best, (fa, fb), strict=True):
        assert row["trial"] == t.number
        assert row["accuracy"] == {"mean": pytest.approx(np.mean(f)), "std": np.std(f, ddof=1)}
    assert [r["norm"] for r in doc["tables"]["folds"]["rows"]] == fa
    assert "ddof = 1" in doc["tables"]["studies"]["caption"]
    assert doc["verdicts"][0].startswith("'norm' vs 'raw': over 6 folds (accuracy)")
    assert "with 6 folds the smallest possible p is 0.0312" in doc["verdicts"][0]


@pytest.mark.slow  # shares the two studies
def test_every_format_holds_the_same_numbers(two_studies: Path) -> None:
    doc = json.loads(_compare(two_studies, "norm", "raw", "--format", "json")[1])
    tests = doc["tables"]["tests"]["rows"]
    code, text = _compare(two_studies, "norm", "raw", "--format", "csv")
    assert code == 0
    blocks = [list(csv.DictReader(io.StringIO(b))) for b in text.split("\n\n")]
    assert len(blocks) == 3
    # CSV keeps whole numbers: exactly the JSON's.
    for row, want in zip(blocks[2], tests, strict=True):
        assert float(row["p"]) == want["p"] and float(row["A - B"]) == want["A - B"]
    study_row = blocks[0][0]
    mean = doc["tables"]["studies"]["rows"][0]["accuracy"]
    assert float(study_row["accuracy"]) == mean["mean"]
    assert float(study_row["accuracy std"]) == mean["std"]
    md, tex = (
        _compare(two_studies, "norm", "raw")[1],
        _compare(two_studies, "norm", "raw", "--format", "tex")[1],
    )
    for want in tests:
        shown = f"{want['p']:.3g}"
        assert f"| {shown} |" in md and f"& {shown} &" in tex
    assert f"**{mean['mean']:.3g} ± {mean['std']:.3g}**" in md
    assert rf"\textbf{{{mean['mean']:.3g} $\pm$ {mean['std']:.3g}}}" in tex
    assert r"\toprule" in tex and "% 'norm' vs 'raw'" in tex
    assert doc["verdicts"][0] in md


@pytest.mark.slow  # shares the two studies
def test_three_studies_are_tested_against_the_first_with_holm(two_studies: Path) -> None:
    code, out = _compare(two_studies, "norm", "raw", "twin", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    rows = doc["tables"]["tests"]["rows"]
    assert [(r["A"], r["B"], r["test"][:8]) for r in rows] == [
        ("norm", "raw", "Wilcoxon"),
        ("norm", "raw", "McNemar "),
        ("norm", "twin", "Wilcoxon"),
        ("norm", "twin", "McNemar "),
    ]
    for test in ("Wilcoxon", "McNemar"):
        mine = [r for r in rows if r["test"].startswith(test)]
        assert [r["p (Holm)"] for r in mine] == holm([r["p"] for r in mine])
    # The twin is the same trial: no discordant fold or clip, p = 1.
    assert rows[2]["p"] == 1.0 and rows[3]["p"] == 1.0
    assert "Holm-adjusted over 2 comparisons" in doc["verdicts"][0]
    assert (
        "'norm' vs 'twin': over 6 folds (accuracy) no significant difference" in doc["verdicts"][1]
    )
    assert (
        len(
            json.loads(
                _compare(two_studies, "norm", "raw", "twin", "--all-pairs", "--format", "json")[1]
            )["verdicts"]
        )
        == 3
    )


@pytest.mark.slow  # shares the two studies
def test_without_predictions_or_corpus_mcnemar_is_one_line_and_wilcoxon_stays(
    two_studies: Path, prepared: Path
) -> None:
    code, out = _compare(two_studies, "old", "raw")
    assert code == 0, out
    assert "McNemar over clips unavailable: trial 1 of 'old' keeps no per-clip predictions" in out
    assert "Wilcoxon signed-rank" in out and "McNemar (exact)" not in out
    code, out = _compare(two_studies, "moved", "raw")
    assert code == 0 and "McNemar over clips unavailable: no prepared corpus at" in out
    assert "pass --data DIR" in out
    code, out = _compare(two_studies, "moved", "raw", "--data", str(prepared))
    assert code == 0 and "McNemar (exact)" in out and "unavailable" not in out


@pytest.mark.slow  # shares the two studies
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["norm"], "hpo compare needs at least two studies (got 1)"),
        (["norm", "nope"], "no study named 'nope' in this storage"),
        (["norm", "empty"], "study 'empty' has no complete trial yet; nothing to compare"),
        (["norm", "norm"], "study 'norm' is named twice"),
        (
            ["norm", "other-corpus"],
            "study 'norm' was run on corpus manifest",
        ),
        (
            ["norm", "other-folds"],
            "'norm' and 'other-folds' were scored on different folds (fold 0: speakers",
        ),
        (
            ["norm", "by-uar"],
            "study 'norm' optimised accuracy, 'by-uar' uar; pick the one to compare with --metric",
        ),
        (["norm", "raw", "--trial", "norm=9"], "--trial norm=9: study 'norm' has no trial 9"),
        (["norm", "raw", "--trial", "x=1"], "'x' is not one of the compared studies"),
        (["norm", "raw", "--trial", "norm"], "'norm' is not STUDY=N"),
    ],
)
def test_what_cannot_be_paired_is_refused_in_one_line(
    two_studies: Path, args: list[str], message: str
) -> None:
    code, out = _compare(two_studies, *args)
    assert code == 2 and message in out
    assert out.count("\n") == 1 and out.startswith("hpo: error: "), out


@pytest.mark.slow  # shares the two studies
def test_a_chosen_metric_compares_studies_that_optimised_different_ones(two_studies: Path) -> None:
    code, out = _compare(two_studies, "norm", "by-uar", "--metric", "uar", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    fold_uar = optuna.load_study(
        study_name="norm", storage=f"sqlite:///{two_studies}"
    ).best_trial.user_attrs["fold_uar"]
    assert [r["norm"] for r in doc["tables"]["folds"]["rows"]] == fold_uar
    assert doc["metric"] == "uar" and "uar" in doc["tables"]["studies"]["columns"]
