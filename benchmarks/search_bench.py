"""Anytime performance of search strategies over seeds: how soon each finds a configuration
close to the best, and at what cost in folds and time.

    python benchmarks/search_bench.py [--corpus DIR] [--study svm] [--trials 100] [--seeds 10]
        [--strategies hpo,random,...] [--warm-start] [--json FILE] [--quick]
    python benchmarks/search_bench.py --merge a.json,b.json   # runs split over processes

Each strategy runs the study ``--trials`` trials once per seed, in an in-memory storage,
through hpo's own objective (``hpo.kinds.svm``: the same folds, metric and pruning reports
as ``hpo run``). The strategies:

* ``grid``: the seed's method, a grid over kernel x C (log-spaced over the study's C range,
  ``--trials`` points in all) with everything else at the study's defaults ([features] set
  and speaker_norm, select_k all, gamma 1 = scikit-learn's "scale", degree 3, coef0 0.5),
  visited in a seeded random order; no pruning.
* ``random``: random search, no pruning; ``random+prune`` with the study's pruner.
* ``tpe``: the study's TPE sampler, no pruning.
* ``hpo``: the study's sampler and pruner exactly as ``hpo run`` builds them
  (``hpo.study.sampling``: a sampler rebuilt before every trial with that trial's seed).
* ``gp``: Optuna's GPSampler (deterministic objective), no pruning. It models the parameters
  every trial has; the conditional ones (gamma, degree, coef0) it samples at random.
* variants of ``hpo``: ``startup5``/``startup20`` (n_startup_trials), ``p0.1``/``p0.15``/
  ``p0.3`` (the Wilcoxon p_threshold), ``s5-p0.3`` (both), ``x4-liar``/``x4-noliar`` (four workers
  at once, simulated by asking four trials before telling any, constant_liar on and off).

Per strategy it prints the median [min-max] over seeds of the best CV value after 10, 25,
50 and ``--trials`` trials (complete trials only: a pruned trial's value is one fold's),
the folds evaluated (share of an unpruned search's), the live wall time, and the median
number of trials needed to come within 0.5 point of the best value any strategy found
(">N" where a seed never did; the count of such seeds in brackets).

Cost: every fold's scores are memoised by (parameters, fold) across strategies and seeds.
The SVM's fold score is a deterministic function of the parameters (precomputed kernels,
and an SVC whose random state is unused by CV), so a memoised value is exactly the live
one (``tests/benchmarks/test_search_bench.py`` checks this). Wall times are live-equivalent:
elapsed time plus the recorded live time of each memoised fold; the per-fold kernels are
built before any strategy runs, as ``hpo run`` builds its caches first.

``--warm-start``: a synthetic corpus in EmoDB's layout (10 speakers, its own seed) is the
target; ``hpo`` runs on it cold and warmed with the 10 best complete trials of the seed-0
``hpo`` study of the main corpus (``hpo.study.warm``, what ``hpo run --warm-start`` does).

Without ``--corpus`` it runs on a SYNTHETIC corpus (RAVDESS layout): which strategy is
fastest there need not hold on real speech.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402

CHECKPOINTS = (10, 25, 50)
NEAR = 0.005  # "within 0.5 point" of the best any strategy found
GRID_FIXED = {"gamma": 1.0, "degree": 3, "coef0": 0.5, "select_k": "all"}
PREPROCESSING = ("feature_set", "speaker_norm", "select_k")  # what the kernels depend on


class Memo:
    """Per-fold scores keyed by (parameters, fold index), with the live seconds each took."""

    def __init__(self) -> None:
        self.scores: dict[tuple[str, int], tuple[dict, float]] = {}
        self.live = 0  # folds actually fitted
        self.saved = 0.0  # live seconds of the folds answered from memory

    def wrap(self, params: dict, fold_fn: Callable) -> Callable:
        key = json.dumps(params, sort_keys=True, default=str)  # floats as repr: exact

        def cached(fold) -> dict:
            k = (key, fold.index)
            if k in self.scores:
                scores, seconds = self.scores[k]
                self.saved += seconds
                return scores
            t = time.perf_counter()
            scores = fold_fn(fold)
            self.scores[k] = (scores, time.perf_counter() - t)
            self.live += 1
            return scores

        return cached


def memo_objective(spec, corpus, memo: Memo):
    """hpo's SVM objective for ``spec`` on ``corpus`` with its folds answered by ``memo``."""
    from hpo.kinds.svm.objective import SvmObjective

    class MemoObjective(SvmObjective):
        def fold_fn(self, trial, params):
            return memo.wrap(params, super().fold_fn(trial, params))

    return MemoObjective(spec, corpus)


def warm_grams(objective) -> None:
    """Every fold's kernels for every preprocessing the space can pick (feature set,
    speaker normalisation, selection), built now, the way a trial's ``fold_fn`` asks."""
    from hpo.kinds.svm.config import FeatureSettings

    spec = objective.spec
    space = {p.name: p.distribution for p in spec.space}
    axes = [
        [(name, c) for c in space[name].choices]
        for name in PREPROCESSING
        if name in space and hasattr(space[name], "choices")
    ]
    for combo in itertools.product(*axes):
        merged = spec.settings.merged(dict(combo))
        for fold in objective.folds:
            objective.gram(FeatureSettings(**merged["features"]), fold, merged["svm"])


@dataclass
class Strategy:
    name: str
    spec: Any  # StudySpec: the sampler and pruner sections this strategy runs with
    sampler: Callable  # (spec, trials so far) -> the sampler for the next trial
    workers: int = 1
    rebuild: bool = True  # a new sampler before every trial (hpo's worker does)


def _hpo_sampler(spec, n: int):
    from hpo.study.sampling import build_sampler, trial_seed

    return build_sampler(spec, trial_seed(spec, n))


def _grid_points(spec, n: int) -> list[dict]:
    space = {p.name: p.distribution for p in spec.space}
    kernels = list(space["kernel"].choices)
    c = space["C"]
    per = max(1, math.ceil(n / len(kernels)))
    cs = np.geomspace(c.low, c.high, per).tolist()
    base = spec.settings.merged({})["features"]
    fixed = {"feature_set": base["set"], "speaker_norm": base["speaker_norm"], **GRID_FIXED}
    return [{**fixed, "kernel": k, "C": v} for k in kernels for v in cs]


def _grid_sampler(spec, n: int):
    import optuna

    grid: dict[str, list] = {}
    for point in _grid_points(spec, n):
        for k, v in point.items():
            grid.setdefault(k, [])
            if v not in grid[k]:
                grid[k].append(v)
    return optuna.samplers.GridSampler(grid, seed=spec.sampler.seed)


def strategies(spec, n_trials: int) -> dict[str, Strategy]:
    """Every strategy by name, each a copy of ``spec`` with its sampler and pruner."""
    import optuna

    s, p = spec.sampler, spec.pruner

    def with_(sampler=None, pruner=None):
        return dataclasses.replace(
            spec,
            sampler=dataclasses.replace(s, **(sampler or {})),
            pruner=dataclasses.replace(p, **(pruner or {})),
        )

    none = {"type": "none"}
    grid_spec = with_(pruner=none)
    return {
        "grid": Strategy(
            "grid", grid_spec, lambda sp, n: _grid_sampler(sp, n_trials), rebuild=False
        ),
        "random": Strategy("random", with_({"type": "random"}, none), _hpo_sampler),
        "random+prune": Strategy("random+prune", with_({"type": "random"}), _hpo_sampler),
        "tpe": Strategy("tpe", with_(pruner=none), _hpo_sampler),
        "hpo": Strategy("hpo", spec, _hpo_sampler),
        "gp": Strategy(
            "gp",
            with_(pruner=none),
            lambda sp, n: optuna.samplers.GPSampler(
                seed=sp.sampler.seed, deterministic_objective=True
            ),
            rebuild=False,
        ),
        "startup5": Strategy("startup5", with_({"n_startup_trials": 5}), _hpo_sampler),
        "startup20": Strategy("startup20", with_({"n_startup_trials": 20}), _hpo_sampler),
        "p0.1": Strategy("p0.1", with_(pruner={"p_threshold": 0.1}), _hpo_sampler),
        "p0.15": Strategy("p0.15", with_(pruner={"p_threshold": 0.15}), _hpo_sampler),
        "p0.3": Strategy("p0.3", with_(pruner={"p_threshold": 0.3}), _hpo_sampler),
        "s5-p0.3": Strategy(
            "s5-p0.3", with_({"n_startup_trials": 5}, {"p_threshold": 0.3}), _hpo_sampler
        ),
        "x4-liar": Strategy("x4-liar", with_({"constant_liar": True}), _hpo_sampler, workers=4),
        "x4-noliar": Strategy(
            "x4-noliar", with_({"constant_liar": False}), _hpo_sampler, workers=4
        ),
    }


@dataclass
class Run:
    """One strategy, one seed: each trial's CV value (None unless complete), folds run."""

    values: list[float | None] = field(default_factory=list)
    folds: list[int] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)
    wall: float = 0.0
    study: Any = None


def run_strategy(strategy: Strategy, objective, memo: Memo, seed: int, n_trials: int,
                 enqueue: list[dict] | None = None) -> Run:  # fmt: skip
    """``n_trials`` trials of ``strategy`` with sampler seed ``seed``, in memory."""
    import optuna
    from optuna.trial import TrialState

    from hpo.config.space import suggest
    from hpo.study.sampling import build_pruner

    spec = dataclasses.replace(
        strategy.spec, sampler=dataclasses.replace(strategy.spec.sampler, seed=seed)
    )
    objective.spec = spec  # its space, metric and pruner's report mode; the caches stay
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        direction=spec.objective.direction,
        pruner=build_pruner(spec),
        sampler=strategy.sampler(spec, 0),
    )
    for params in enqueue or []:
        study.enqueue_trial(params)
    t, saved = time.perf_counter(), memo.saved
    while len(study.trials) < n_trials:
        if strategy.workers == 1:  # the worker's own path: optimize, one trial at a time
            if strategy.rebuild:
                study.sampler = strategy.sampler(spec, len(study.trials))
            study.optimize(objective, n_trials=1)
            continue
        batch = []
        for _ in range(min(strategy.workers, n_trials - len(study.trials))):
            if strategy.rebuild:
                study.sampler = strategy.sampler(spec, len(study.trials))
            batch.append(study.ask())  # asked together: the others are RUNNING meanwhile
            # A worker suggests its parameters as its trial starts: the trials asked after
            # it see them while it runs (constant_liar's lie needs them).
            suggest(batch[-1], spec.space)
        for trial in batch:
            try:
                study.tell(trial, objective(trial))
            except optuna.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
    run = Run(wall=time.perf_counter() - t + memo.saved - saved, study=study)
    for tr in study.trials:
        run.values.append(tr.value if tr.state == TrialState.COMPLETE else None)
        run.folds.append(int(tr.user_attrs.get("folds_done", 0)))
        run.params.append(dict(tr.params))
    return run


def best_after(values: list[float | None], n: int) -> float:
    return max((v for v in values[:n] if v is not None), default=float("nan"))


def trials_to(values: list[float | None], target: float) -> int | None:
    """The 1-based trial at which the best so far first reaches ``target``; None if never."""
    best = -math.inf
    for i, v in enumerate(values, start=1):
        if v is not None:
            best = max(best, v)
        if best >= target - 1e-12:
            return i
    return None


def _spread(xs: list[float], fmt: str = ".4f") -> str:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return "-"
    return f"{np.median(xs):{fmt}} [{min(xs):{fmt}}-{max(xs):{fmt}}]"


def _needed(runs: list[Run], target: float, n: int) -> str:
    got = [trials_to(r.values, target) for r in runs]
    missed = sum(g is None for g in got)
    # A seed that never got there counts as n + 1 in the median: "more than n".
    med = float(np.median([n + 1 if g is None else g for g in got]))
    text = f">{n}" if med > n else f"{med:g}"
    return text + (f" ({missed} never)" if missed else "")


def _folds_to(runs: list[Run], target: float) -> str:
    """Median folds evaluated until the best so far reaches ``target``: the cost of getting
    there, where pruned trials cost only the folds they ran ("-" if most seeds never did)."""
    got = []
    for r in runs:
        at = trials_to(r.values, target)
        got.append(math.inf if at is None else sum(r.folds[:at]))
    med = float(np.median(got))
    return "-" if math.isinf(med) else f"{med:g}"


def summarise(
    results: dict[str, list[Run]], n_trials: int, n_folds: int, reference: str = "random"
) -> dict:
    """The table's numbers per strategy, and the targets of issue #27: trials to reach the
    ``reference`` strategy's best-of-N (median over its seeds)."""
    best = max(best_after(r.values, n_trials) for runs in results.values() for r in runs)
    rows = {}
    for name, runs in results.items():
        rows[name] = {
            "best_after": {
                n: [best_after(r.values, n) for r in runs]
                for n in (*[c for c in CHECKPOINTS if c < n_trials], n_trials)
            },
            "folds": [sum(r.folds) for r in runs],
            "fold_share": [sum(r.folds) / (n_trials * n_folds) for r in runs],
            "wall": [r.wall for r in runs],
            "to_near_best": [trials_to(r.values, best - NEAR) for r in runs],
            "needed": _needed(runs, best - NEAR, n_trials),
        }
    out: dict[str, Any] = {"best_any": best, "rows": rows}
    if reference in results:
        # Issue #27's target: random search's best after N trials (median over seeds).
        target = float(np.median(rows[reference]["best_after"][n_trials]))
        out["reference"], out["reference_best"] = reference, target
        for name, runs in results.items():
            rows[name]["to_reference"] = _needed(runs, target, n_trials)
            rows[name]["folds_to_reference"] = _folds_to(runs, target)
    if reference == "random" and "random" in results and "hpo" in results:
        out["hpo_to_random_best"] = rows["hpo"]["to_reference"]
        out["hpo_fold_share"] = float(np.median(rows["hpo"]["fold_share"]))
    return out


def print_table(summary: dict, n_trials: int, seeds: int) -> None:
    marks = [c for c in CHECKPOINTS if c < n_trials] + [n_trials]
    head = "".join(f"{'best@' + str(m):>24}" for m in marks)
    print(
        f"{'strategy':<13}{head}{'folds (share)':>16}{'wall s':>20}  to within 0.5 pt"
        + (f"  to {summary['reference']}'s best (folds)" if "reference" in summary else "")
    )
    for name, r in summary["rows"].items():
        cells = "".join(f"{_spread(r['best_after'][m]):>24}" for m in marks)
        folds = f"{np.median(r['folds']):.0f} ({np.median(r['fold_share']):.0%})"
        print(
            f"{name:<13}{cells}{folds:>16}{_spread(r['wall'], '.1f'):>20}  {r['needed']:<16}"
            f"  {r.get('to_reference', '')}"
            + (f" ({r['folds_to_reference']})" if "folds_to_reference" in r else ""),
            flush=True,
        )
    print(
        f"median [min-max] over {seeds} seeds; best any strategy found "
        f"{summary['best_any']:.4f}; within 0.5 pt = {summary['best_any'] - NEAR:.4f}"
    )
    if "hpo_to_random_best" in summary:
        print(
            f"target: hpo reaches random's median best-of-{n_trials} "
            f"({summary['reference_best']:.4f}) in {summary['hpo_to_random_best']} trials "
            f"(median; target <= 35); hpo evaluates {summary['hpo_fold_share']:.0%} of an "
            "unpruned search's folds (target <= 60%)"
        )


def benchmark(args: argparse.Namespace) -> dict:
    """Run every chosen strategy for every seed; returns the runs and their summary."""
    import optuna

    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpo-search-"))
    root = corpus_for_bench(args.corpus, work, args.clips_per_actor)
    corpus = load_corpus(root)
    spec = load_spec(args.study).with_overrides(corpus=root)
    memo = Memo()
    t = time.perf_counter()
    objective = memo_objective(spec, corpus, memo)
    warm_grams(objective)
    n_folds = len(objective.folds)
    print(
        f"corpus: {root} ({len(corpus.clips)} clips, {n_folds} folds, "
        f"{'SYNTHETIC' if corpus.synthetic else 'real'}); study {spec.name}: "
        f"{spec.objective.metric}, sampler {spec.sampler}, pruner {spec.pruner.type} "
        f"p={spec.pruner.p_threshold}; {args.trials} trials x {args.seeds} seeds; "
        f"features and kernels {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    table = strategies(spec, args.trials)
    names = list(table) if args.strategies is None else [n for n in args.strategies.split(",") if n]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"--strategies: unknown {', '.join(unknown)} (known: {', '.join(table)})")
    results: dict[str, list[Run]] = {}
    for name in names:
        t = time.perf_counter()
        results[name] = []
        for s in range(args.seeds):
            results[name].append(run_strategy(table[name], objective, memo, 1000 * s, args.trials))
            if args.json:  # after each run: a long benchmark keeps what it finished
                save(args.json, results, n_folds)
        print(
            f"  {name}: {time.perf_counter() - t:.0f} s ({memo.live} folds fitted so far)",
            flush=True,
        )
    out: dict[str, Any] = {"results": results, "n_folds": n_folds, "spec": spec}
    if results:
        out["summary"] = summarise(results, args.trials, n_folds)
        print_table(out["summary"], args.trials, args.seeds)
    if args.warm_start:
        source = results["hpo"][0] if "hpo" in results else None
        source = source or run_strategy(table["hpo"], objective, memo, 0, args.trials)
        out["warm"] = warm_start_bench(args, work, source, table)
    return out


def save(path: str, results: dict[str, list[Run]], n_folds: int) -> None:
    runs = {
        name: [{"values": r.values, "folds": r.folds, "wall": r.wall} for r in rs]
        for name, rs in results.items()
    }
    Path(path).write_text(json.dumps({"n_folds": n_folds, "runs": runs}))


def merge(paths: list[str]) -> None:
    """One table from the ``--json`` files of runs split over processes (same corpus,
    study, trials and seeds): the best any strategy found is over all of them."""
    results: dict[str, list[Run]] = {}
    n_folds = 0
    for path in paths:
        data = json.loads(Path(path).read_text())
        n_folds = data["n_folds"]
        for name, rs in data["runs"].items():
            results[name] = [Run(r["values"], r["folds"], wall=r["wall"]) for r in rs]
    n = max(len(r.values) for rs in results.values() for r in rs)
    seeds = max(len(rs) for rs in results.values())
    print_table(summarise(results, n, n_folds), n, seeds)


def warm_start_bench(args, work: Path, source_run: Run, table: dict) -> dict:
    """``hpo`` on an EmoDB-layout synthetic corpus, cold and warmed by the main corpus's
    seed-0 ``hpo`` study (its 10 best complete trials)."""
    from hpo.corpus.manifest import load_corpus
    from hpo.corpus.prepare import prepare
    from hpo.corpus.synth import synthesize
    from hpo.study.warm import best_complete, fit_params

    src, root = work / "emodb-src", work / "emodb"
    if not (root / "corpus.json").is_file():
        synthesize(src, fmt="emodb", seed=7, clips_per_actor=args.warm_clips)
        prepare(src, root, n_folds=5)
    corpus = load_corpus(root)
    spec = table["hpo"].spec.with_overrides(corpus=root)
    spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, folds=5))
    memo = Memo()
    objective = memo_objective(spec, corpus, memo)
    warm_grams(objective)
    source = source_run.study
    params = [fit_params(t.params, spec.space)[0] for t in best_complete(source, 10)]
    strategy = dataclasses.replace(table["hpo"], spec=spec)
    runs = {
        "cold": [
            run_strategy(strategy, objective, memo, 1000 * s, args.trials)
            for s in range(args.seeds)
        ],  # fmt: skip
        "warm10": [
            run_strategy(strategy, objective, memo, 1000 * s, args.trials, params)
            for s in range(args.seeds)
        ],  # fmt: skip
    }
    summary = summarise(runs, args.trials, len(objective.folds), reference="cold")
    print(
        f"\nwarm start: target {root} ({len(corpus.clips)} clips, EmoDB layout, 10 speakers, "
        f"5 folds, SYNTHETIC); source: the seed-0 hpo study above (best "
        f"{best_after(source_run.values, args.trials):.4f})"
    )
    print_table(summary, args.trials, args.seeds)
    return {"summary": summary, "runs": runs}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", help="prepared corpus (default: synthetic, RAVDESS layout)")
    ap.add_argument("--workdir", default=None, help="keeps the synthetic corpora for reuse")
    ap.add_argument("--study", default="svm", help="an svm study (name or path)")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--clips-per-actor", type=int, default=60, help="synthetic corpus size")
    ap.add_argument(
        "--strategies",
        default=None,
        help="comma-separated (default: all; '' none, with --warm-start)",
    )
    ap.add_argument("--warm-start", action="store_true", help="also measure warm start")
    ap.add_argument("--warm-clips", type=int, default=49, help="clips per EmoDB speaker")
    ap.add_argument("--json", default=None, help="write every run's values here")
    ap.add_argument("--merge", default=None, help="FILE,FILE: one table from --json files")
    ap.add_argument("--quick", action="store_true", help="12 trials x 2 seeds (a test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.trials, args.seeds = 12, 2
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.merge:
        merge(args.merge.split(","))
        return {}
    return benchmark(args)


if __name__ == "__main__":
    main()
