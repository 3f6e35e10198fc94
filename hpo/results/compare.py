"""``hpo compare``: the best trials of studies run on the same corpus and folds, side by side,
with paired tests between them.

Two tests, each paired the way the data are: over folds, an exact Wilcoxon signed-rank test
on the per-fold scores (the folds' speakers are the same in both studies, so fold k of one is
paired with fold k of the other); over clips, an exact McNemar test on the per-clip
predictions (each validation clip is scored by both trials; only the clips one trial got
right and the other wrong carry information). Both are exact, not asymptotic: K folds have
only 2^K sign patterns (six folds: 64, so the smallest two-sided p is 2/64 = 0.031), which
the verdict says rather than let "not significant" read as "equal".

The statistics are pure functions of numbers (:func:`wilcoxon_folds`, :func:`mcnemar_clips`,
:func:`holm`, :func:`verdict`); :func:`compare_studies` reads the studies and lays the
numbers out as :class:`~hpo.results.tables.Table` s, so every format holds the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from hpo.errors import HpoError
from hpo.results.tables import Best, MeanStd, Table, params_text
from hpo.trial.metrics import METRICS
from hpo.trial.predictions import of_trial

ALPHA = 0.05
# Up to this many untied folds the verdict names the smallest p the Wilcoxon test can give
# (10 folds: 0.002).
FEW_FOLDS = 10
FORMATS = ("md", "tex", "csv", "json", "html")


@dataclass(frozen=True)
class PairedTest:
    """One paired test of A against B.

    ``diff`` is A - B (the mean paired difference over folds, or the difference in accuracy
    over clips); ``a_better``/``b_better`` count the pairs each side won (folds with a higher
    score; clips only that side got right: McNemar's b and c); ``effect`` is the effect size
    named by ``effect_name``; ``min_p`` the smallest p the test could give on ``n`` pairs.
    """

    test: str
    n: int
    a_better: int
    b_better: int
    diff: float
    effect_name: str
    effect: float
    p: float
    min_p: float


def wilcoxon_folds(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Exact two-sided Wilcoxon signed-rank test of per-fold scores ``a`` against ``b``.

    Folds with equal scores are left out (Wilcoxon's own treatment, scipy's default); the
    effect size is the matched-pairs rank-biserial correlation (R+ − R−)/(R+ + R−) over the
    others: +1 when A is higher on every fold, −1 when B is.
    """
    from scipy.stats import rankdata, wilcoxon

    d = np.asarray(a, float) - np.asarray(b, float)
    nz = d[d != 0]
    diff = float(d.mean()) if len(d) else math.nan
    if len(nz) == 0:  # identical on every fold: no evidence of any difference
        return PairedTest(
            "Wilcoxon signed-rank", len(d), 0, 0, diff, "rank-biserial r", 0.0, 1.0, 1.0
        )
    p = float(wilcoxon(a, b, method="exact", alternative="two-sided").pvalue)
    ranks = rankdata(np.abs(nz))
    r = float((ranks[nz > 0].sum() - ranks[nz < 0].sum()) / ranks.sum())
    a_up, b_up = int((nz > 0).sum()), int((nz < 0).sum())
    return PairedTest(
        "Wilcoxon signed-rank", len(d), a_up, b_up, diff, "rank-biserial r", r, p, min_p(len(nz))
    )


def min_p(n: int) -> float:
    """The smallest two-sided p an exact sign-type test can give on ``n`` non-tied pairs:
    both one-sided extremes, each of probability 2^-n (6 folds: 2/64 = 0.031)."""
    return min(1.0, 2.0 / 2**n) if n > 0 else 1.0


def mcnemar_clips(a_right: np.ndarray, b_right: np.ndarray) -> PairedTest:
    """Exact McNemar test: of the clips exactly one trial got right (b: only A, c: only B),
    is b/(b + c) different from 1/2? A two-sided exact binomial test on b of b + c. Effect
    sizes: the difference in accuracy (b − c)/n and the odds ratio b/c (NaN when c = 0)."""
    from scipy.stats import binomtest

    a_right, b_right = np.asarray(a_right, bool), np.asarray(b_right, bool)
    b = int((a_right & ~b_right).sum())
    c = int((~a_right & b_right).sum())
    n = len(a_right)
    p = float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    odds = b / c if c else math.nan
    return PairedTest(
        "McNemar (exact)", n, b, c, (b - c) / n, "odds ratio b/c", odds, p, min_p(b + c)
    )


def holm(ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``ps`` (one family of tests), in their order:
    the k-th smallest p times (m − k + 1), kept monotone, capped at 1."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out = [0.0] * len(ps)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def _test_phrase(t: PairedTest, p_adj: float, what: str, a: str, b: str, m: int) -> str:
    """One test's share of a verdict, never stronger than the numbers: "significant at alpha
    = 0.05" or "no significant difference at alpha = 0.05", never "equal" or "better"."""
    adj = f", Holm-adjusted over {m} comparisons" if m > 1 else ""
    p = f"{t.test.split(' ')[0]} p = {p_adj:.3g}{adj}"
    if p_adj <= ALPHA:
        # The direction the test saw: Wilcoxon's ranks (r), McNemar's b against c.
        up = t.effect > 0 if t.test.startswith("Wilcoxon") else t.diff > 0
        higher, lower = (a, b) if up else (b, a)
        out = (
            f"over {what} '{higher}' scored higher than '{lower}' "
            f"({p}; significant at alpha = {ALPHA})"
        )
    else:
        out = f"over {what} no significant difference at alpha = {ALPHA} ({p})"
    n = t.a_better + t.b_better
    if t.test.startswith("Wilcoxon") and n <= FEW_FOLDS:
        # Few folds: the test's resolution is coarse, and the reader must know it.
        folds = f"{n} folds" if n == t.n else f"{n} untied folds (of {t.n})"
        out += f"; with {folds} the smallest possible p is {t.min_p:.3g}"
        if min(1.0, t.min_p * m) > ALPHA:
            out += f", so this test cannot reach alpha = {ALPHA}" + (" after Holm" if m > 1 else "")
    return out


def verdict(
    a: str,
    b: str,
    metric: str,
    fold_test: PairedTest,
    fold_p: float,
    clip_test: PairedTest | None,
    clip_p: float | None,
    m: int = 1,
) -> str:
    """One line on A against B: each test's result at alpha = 0.05 (on ``fold_p``/``clip_p``,
    the Holm-adjusted p-values when ``m`` > 1 comparisons were made), the few-folds caveat."""
    parts = [
        _test_phrase(fold_test, fold_p, f"{fold_test.n} folds ({metric})", a, b, m),
    ]
    if clip_test is not None and clip_p is not None:
        parts.append(_test_phrase(clip_test, clip_p, f"{clip_test.n} clips (accuracy)", a, b, m))
    return f"'{a}' vs '{b}': " + "; ".join(parts) + "."


# -- reading the studies -----------------------------------------------------------------


@dataclass
class Compared:
    """One study's side of the comparison: its chosen trial and what the tests need."""

    name: str
    kind: str
    trial: FrozenTrial
    attrs: dict[str, Any]
    folds: list[float] = field(default_factory=list)


def _pick_trial(study: Any, name: str, number: int | None) -> FrozenTrial:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise HpoError(f"study '{name}' has no complete trial yet; nothing to compare")
    from hpo.study.storage import pick_trial

    why = "pick a complete trial (hpo status lists them)"
    return pick_trial(study, number, (TrialState.COMPLETE,), why, f"--trial {name}={number}: ")


def load_compared(
    storage_url: str, names: Sequence[str], trials: dict[str, int], metric: str | None
) -> tuple[list[Compared], str]:
    """Each study's chosen trial (its best complete one, or ``trials[name]``) and the metric
    compared; refuses, in one line, anything that would make the pairing meaningless."""
    from hpo.study.storage import load_study, open_storage

    if len(names) < 2:
        raise HpoError(f"hpo compare needs at least two studies (got {len(names)})")
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice:
        raise HpoError(f"study '{twice[0]}' is named twice; compare different studies")
    stray = sorted(set(trials) - set(names))
    if stray:
        raise HpoError(f"--trial {stray[0]}=...: '{stray[0]}' is not one of the compared studies")
    storage = open_storage(storage_url, create=False)
    out = []
    for n in names:
        study = load_study(storage, n)
        t = _pick_trial(study, n, trials.get(n))
        out.append(Compared(n, str(study.user_attrs.get("kind", "")), t, dict(study.user_attrs)))
    metric = metric or _common_metric(out)
    _check_same_data(out)
    for c in out:
        scores = c.trial.user_attrs.get(f"fold_{metric}")
        if not scores or any(v is None for v in scores):
            raise HpoError(
                f"trial {c.trial.number} of '{c.name}' keeps no per-fold {metric} scores "
                "(written by an older hpo?); it cannot be paired"
            )
        c.folds = [float(v) for v in scores]
    return out, metric


def _common_metric(studies: list[Compared]) -> str:
    metrics = [str(c.attrs.get("metric", "")) for c in studies]
    for c, m in zip(studies[1:], metrics[1:], strict=True):
        if m != metrics[0]:
            raise HpoError(
                f"study '{studies[0].name}' optimised {metrics[0] or 'no recorded metric'}, "
                f"'{c.name}' {m or 'no recorded metric'}; pick the one to compare with "
                f"--metric ({'|'.join(METRICS)})"
            )
    if metrics[0] not in METRICS:
        raise HpoError(
            f"study '{studies[0].name}' records no hpo metric; pick one with --metric "
            f"({'|'.join(METRICS)})"
        )
    return metrics[0]


def _check_same_data(studies: list[Compared]) -> None:
    """Same prepared corpus (manifest hash) and same folds (each fold's speakers), or no
    pairing: fold k must hold the same speakers, clip i must be the same clip."""
    first = studies[0]
    for c in studies:
        if not c.attrs.get("manifest_hash") or not c.attrs.get("fold_actors"):
            raise HpoError(
                f"study '{c.name}' records no corpus manifest or folds (not run by hpo?); "
                "it cannot be paired with another"
            )
    for c in studies[1:]:
        ha, hb = first.attrs["manifest_hash"], c.attrs["manifest_hash"]
        if ha != hb:
            raise HpoError(
                f"study '{first.name}' was run on corpus manifest {ha} "
                f"({first.attrs.get('corpus_name', '?')}), '{c.name}' on {hb} "
                f"({c.attrs.get('corpus_name', '?')}); compare studies on the same prepared corpus"
            )
        fa, fb = first.attrs["fold_actors"], c.attrs["fold_actors"]
        if fa != fb:
            raise HpoError(
                f"study '{first.name}' and '{c.name}' were scored on different folds "
                f"({_fold_difference(fa, fb)}); compare studies on the same folds"
            )


def _fold_difference(fa: dict[str, list], fb: dict[str, list]) -> str:
    if len(fa) != len(fb):
        return f"{len(fa)} folds vs {len(fb)}"
    for k in sorted(fa, key=lambda s: int(s) if str(s).isdigit() else 0):
        if fa.get(k) != fb.get(k):
            show = lambda v: ", ".join(map(str, v or [])) or "none"  # noqa: E731
            return f"fold {k}: speakers {show(fa.get(k))} vs {show(fb.get(k))}"
    return "different fold ids"


def clip_correctness(
    studies: list[Compared], data: Path | None
) -> tuple[list[np.ndarray] | None, str | None]:
    """Per study, whether each validation clip (by manifest index, ascending) was predicted
    right; or None and the one-line reason the McNemar test is unavailable."""
    from hpo.corpus.manifest import load_corpus

    kept = [of_trial(c.trial) for c in studies]
    for c, k in zip(studies, kept, strict=True):
        if k is None:
            return None, (
                f"McNemar over clips unavailable: trial {c.trial.number} of '{c.name}' keeps "
                "no per-clip predictions (run by an hpo older than clip_predictions)"
            )
    root = data or Path(str(studies[0].attrs.get("corpus_path", "")))
    try:
        corpus = load_corpus(root)
    except HpoError:
        return None, (
            f"McNemar over clips unavailable: no prepared corpus at {root} to read the true "
            "labels from; pass --data DIR"
        )
    if corpus.manifest_hash != studies[0].attrs["manifest_hash"]:
        return None, (
            f"McNemar over clips unavailable: the corpus at {root} (manifest "
            f"{corpus.manifest_hash}) is not the one the studies ran on "
            f"({studies[0].attrs['manifest_hash']}); pass --data DIR"
        )
    y = corpus.label_ids
    out = []
    for c, k in zip(studies, kept, strict=True):
        assert k is not None
        order = np.argsort(k.clips, kind="stable")
        clips = k.clips[order]
        # Same folds, complete trials: every trial validated the same clips, each once.
        if not np.array_equal(clips, np.sort(kept[0].clips)) or len(np.unique(clips)) != len(clips):
            return None, (
                f"McNemar over clips unavailable: trial {c.trial.number} of '{c.name}' did "
                "not validate the same clips once each"
            )
        out.append(k.pred[order] == y[clips])
    return out, None


# -- the comparison as tables -------------------------------------------------------------


@dataclass
class Comparison:
    """What ``hpo compare`` prints: three tables (the studies, their per-fold scores, the
    paired tests), one verdict line per pair and notes; every format from the same cells."""

    metric: str
    tables: dict[str, Table]
    verdicts: list[str]
    notes: list[str]

    def render(self, fmt: str) -> str:
        """``fmt``: md (the console's default), tex, csv, json or html."""
        tables = list(self.tables.values())
        lines = self.verdicts + self.notes
        if fmt == "json":
            doc = {
                "metric": self.metric,
                "alpha": ALPHA,
                "tables": {k: t.as_dict() for k, t in self.tables.items()},
                "verdicts": self.verdicts,
                "notes": self.notes,
            }
            return json.dumps(doc, indent=2) + "\n"
        if fmt == "csv":  # one block per table, an empty line between (no prose)
            return "\n".join(t.csv() for t in tables)
        if fmt == "tex":  # prose as comments: the tables paste as they are
            from hpo.results.tables import tex_escape

            body = "\n".join(t.latex() for t in tables)
            return body + "".join(f"% {tex_escape(line)}\n" for line in lines)
        if fmt == "html":
            import html

            return "".join(t.html() for t in tables) + "".join(
                f"<p>{html.escape(line)}</p>" for line in lines
            )
        return (
            "\n".join(t.markdown() for t in tables)
            + "\n"
            + "".join(f"- {line}\n" for line in lines)
        )


def compare_studies(
    storage_url: str,
    names: Sequence[str],
    metric: str | None = None,
    trials: dict[str, int] | None = None,
    data: Path | None = None,
    all_pairs: bool = False,
) -> Comparison:
    """Compare the best complete trial of each study (or ``trials[name]``) on ``metric``
    (default: the metric the studies optimised): pairwise against the first study, or every
    pair with ``all_pairs``, Holm-corrected over the pairs when there are more than one.

    Args:
        storage_url: where the studies are.
        names: two or more studies run on the same prepared corpus and folds.
        metric: accuracy, uar or macro_f1 (their per-fold scores); None: the studies' own.
        trials: ``{study: trial number}`` to compare a trial other than the best.
        data: the prepared corpus (for the true labels McNemar needs) when it is no longer
            where the studies recorded it.
        all_pairs: every pair instead of each study against the first.
    """
    studies, metric = load_compared(storage_url, names, trials or {}, metric)
    right, why_not = clip_correctness(studies, data)
    idx = list(range(len(studies)))
    pairs = [(i, j) for i in idx for j in idx if i < j] if all_pairs else [(0, j) for j in idx[1:]]
    fold_tests = [wilcoxon_folds(studies[i].folds, studies[j].folds) for i, j in pairs]
    clip_tests = (
        [mcnemar_clips(right[i], right[j]) for i, j in pairs] if right is not None else None
    )
    fold_adj = holm([t.p for t in fold_tests])
    clip_adj = holm([t.p for t in clip_tests]) if clip_tests else None
    m = len(pairs)
    verdicts = [
        verdict(
            studies[i].name,
            studies[j].name,
            metric,
            fold_tests[k],
            fold_adj[k],
            clip_tests[k] if clip_tests else None,
            clip_adj[k] if clip_adj else None,
            m,
        )
        for k, (i, j) in enumerate(pairs)
    ]
    notes = [why_not] if why_not else []
    notes.append(
        "Each best trial was picked on these same folds, so its score is optimistic; "
        "'hpo nested' estimates what a search achieves."
    )
    tables = {
        "studies": _studies_table(studies, metric),
        "folds": _folds_table(studies, metric),
        "tests": _tests_table(studies, pairs, fold_tests, fold_adj, clip_tests, clip_adj),
    }
    return Comparison(metric, tables, verdicts, notes)


def _studies_table(studies: list[Compared], metric: str) -> Table:
    means = [float(np.mean(c.folds)) for c in studies]
    top = max(means)
    t = Table(
        ["study", "kind", "trial", "folds", metric, "parameters"],
        caption=f"Each study's compared trial: {metric} as mean ± standard deviation over "
        "folds (sample std, ddof = 1).",
    )
    for c, mean in zip(studies, means, strict=True):
        std = float(np.std(c.folds, ddof=1)) if len(c.folds) > 1 else None
        cell = MeanStd(mean, std)
        t.add(
            c.name,
            c.kind,
            c.trial.number,
            len(c.folds),
            Best(cell) if mean == top else cell,
            params_text(c.trial.params),
        )
    return t


def _folds_table(studies: list[Compared], metric: str) -> Table:
    actors = studies[0].attrs["fold_actors"]
    t = Table(
        ["fold", "speakers", *(c.name for c in studies)],
        caption=f"{metric} per fold (the same speakers' clips validated in every study).",
    )
    for k, key in enumerate(sorted(actors, key=_fold_key)):
        scores = [c.folds[k] for c in studies]
        top = max(scores)
        t.add(k, ", ".join(map(str, actors[key])), *(Best(v) if v == top else v for v in scores))
    return t


def _fold_key(k: str) -> int:
    return int(k) if str(k).isdigit() else 0


def _tests_table(
    studies: list[Compared],
    pairs: list[tuple[int, int]],
    fold_tests: list[PairedTest],
    fold_adj: list[float],
    clip_tests: list[PairedTest] | None,
    clip_adj: list[float] | None,
) -> Table:
    m = len(pairs)
    t = Table(
        [
            "A",
            "B",
            "test",
            "n",
            "A better",
            "B better",
            "A - B",
            "effect measure",
            "effect size",
            "p",
            "p (Holm)",
        ],
        caption=(
            "Paired two-sided exact tests. Wilcoxon signed-rank over folds: n folds, A - B the "
            "mean difference, effect size the matched-pairs rank-biserial correlation. "
            "McNemar over clips: n clips, A/B better the clips only A/B got right (b, c), "
            "A - B the difference in accuracy, effect size the odds ratio b/c. "
            + (
                f"p (Holm): adjusted over the {m} pairs of each test."
                if m > 1
                else "p (Holm): one pair, so p unchanged."
            )
        ),
    )
    for k, (i, j) in enumerate(pairs):
        rows = [(fold_tests[k], fold_adj[k])]
        if clip_tests is not None and clip_adj is not None:
            rows.append((clip_tests[k], clip_adj[k]))
        for test, adj in rows:
            t.add(
                studies[i].name,
                studies[j].name,
                test.test,
                test.n,
                test.a_better,
                test.b_better,
                test.diff,
                test.effect_name,
                test.effect,
                test.p,
                adj,
            )
    return t
