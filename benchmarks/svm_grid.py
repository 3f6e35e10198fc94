"""Where is the best C (and gamma) for each feature set and kernel, and is it inside the
shipped `svm` space? A grid over the scale-free parameters, scored by the study's own
six-fold actor CV (the objective's cached, precomputed kernels).

    python benchmarks/svm_grid.py [--corpus data/ravdess] [--sets librosa,egemaps,compare]
        [--kernels linear,rbf,poly,sigmoid] [--speaker-norm true|false|both] [--step 0.5]
        [--select-k K] [--json FILE] [--replay FILE]

Grid: log10 C from -3 to 4 and log10 gamma from -4 to 1, every ``--step`` decades
(``--step2`` for poly and sigmoid, whose grids cost the most: 1 halves the run); poly at
degree 3, coef0 0.5 and sigmoid at coef0 0 (the middle of the shipped ranges). For each
set and kernel it
prints the best accuracy, where it lies (the span of grid points within 0.0005 of it, as
a plateau is not one point), whether that lies strictly inside the shipped space and
outside its outer 5% (the `hpo status` edge), the best of the grid points inside the
shipped space, and how many grid points tie the best to 4 decimals. ``--json`` keeps every
grid point; ``--replay`` prints such a file again against today's shipped space. Without
--corpus it runs on a full-size SYNTHETIC corpus: where the optimum of synthetic clips
lies says nothing certain about real speech.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402

NEAR = 0.0005  # grid points this close to the best count as "where the best lies"
FIXED = {"poly": {"degree": 3, "coef0": 0.5}, "sigmoid": {"coef0": 0.0}}


def _grid(lo: float, hi: float, step: float) -> list[float]:
    n = round((hi - lo) / step)
    return [float(10 ** (lo + i * step)) for i in range(n + 1)]


def _points(kernel: str, step: float, step2: float) -> list[dict]:
    cs = _grid(-3, 4, step if kernel in ("linear", "rbf") else step2)
    if kernel == "linear":
        return [{"C": c} for c in cs]
    gs = _grid(-4, 1, step if kernel == "rbf" else step2)
    return [{"C": c, "gamma": g, **FIXED.get(kernel, {})} for c in cs for g in gs]


def _score(objective, s, svm: dict) -> float:
    from hpo.kinds.svm.kernels import kernels, precomputed_svc
    from hpo.trial.metrics import fold_scores

    accs = []
    for fold in objective.folds:
        k_train, k_valid = kernels(svm, objective.gram(s, fold, svm))
        pred = precomputed_svc(svm).fit(k_train, objective.y[fold.train]).predict(k_valid)
        accs.append(fold_scores(objective.y[fold.valid], pred, objective.n_classes)["accuracy"])
    return float(np.mean(accs))


def _inside(name: str, lo: float, hi: float, space: dict) -> tuple[bool, bool]:
    """(some of [lo, hi] strictly inside the shipped range, some of it outside the 5% edges)."""
    p = space.get(name)
    if p is None:
        return True, True
    d = p.distribution
    a, b = math.log10(d.low), math.log10(d.high)
    x, y = math.log10(lo), math.log10(hi)
    inside = y > a and x < b
    edge = 0.05 * (b - a)
    return inside, y > a + edge and x < b - edge


def _in_space(row: dict, space: dict) -> bool:
    """Whether a grid point lies in the shipped space (closed ranges, up to rounding)."""
    for name in ("C", "gamma"):
        d = space[name].distribution if name in space else None
        if d is not None and name in row and not d.low * 0.999 <= row[name] <= d.high * 1.001:
            return False
    return True


def _summary(rows: list[dict], space: dict) -> dict:
    best = max(r["acc"] for r in rows)
    near = [r for r in rows if r["acc"] >= best - NEAR]
    tie = sum(round(r["acc"], 4) == round(best, 4) for r in rows)
    reach = [r["acc"] for r in rows if _in_space(r, space)]
    out = {"best": best, "ties": tie, "points": len(rows), "in_space": max(reach, default=None)}
    ok_in, ok_edge = True, True
    for name in ("C", "gamma"):
        vals = [r[name] for r in near if name in r]
        if vals:
            lo, hi = min(vals), max(vals)
            out[name] = [lo, hi]
            i, e = _inside(name, lo, hi, space)
            ok_in, ok_edge = ok_in and i, ok_edge and e
    out["inside"], out["clear_of_edge"] = ok_in, ok_edge
    return out


def _fmt(span: list[float] | None) -> str:
    if not span:
        return "-"
    lo, hi = span
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g}..{hi:.3g}"


HEADER = (
    f"{'set':<8} {'norm':<5} {'kernel':<8} {'best':>6}  {'C':<14} {'gamma':<16} "
    f"{'inside':<6} {'clear':<6} {'in space':>8}  ties/points  seconds"
)


def _line(r: dict, seconds: float) -> str:
    reach = "-" if r["in_space"] is None else f"{r['in_space']:.4f}"
    return (
        f"{r['set']:<8} {str(r['speaker_norm']):<5} {r['kernel']:<8} {r['best']:>6.4f}  "
        f"{_fmt(r.get('C')):<14} {_fmt(r.get('gamma')):<16} "
        f"{'yes' if r['inside'] else 'NO':<6} {'yes' if r['clear_of_edge'] else 'NO':<6} "
        f"{reach:>8}  {r['ties']}/{r['points']:<10} {seconds:.0f}"
    )


def _run_grid(args: argparse.Namespace, spec, corpus, space: dict) -> list[dict]:
    from hpo.kinds.svm.objective import SvmObjective

    objective = SvmObjective(spec, corpus)
    base = spec.settings.merged({} if args.select_k is None else {"select_k": args.select_k})["svm"]
    norms = {"true": [True], "false": [False], "both": [True, False]}[args.speaker_norm]
    results = []
    for set_name in args.sets.split(","):
        for norm in norms:
            s = dataclasses.replace(spec.settings.features, set=set_name, speaker_norm=norm)
            if set_name not in objective.raw:
                objective.raw[set_name] = _load(corpus, s)
            for kernel in args.kernels.split(","):
                t = time.perf_counter()
                rows = [
                    {**p, "acc": _score(objective, s, {**base, "kernel": kernel, **p})}
                    for p in _points(kernel, args.step, args.step2)
                ]
                r = {"set": set_name, "speaker_norm": norm, "kernel": kernel, "grid": rows}
                results.append({**r, **_summary(rows, space)})
                print(_line(results[-1], time.perf_counter() - t), flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", help="prepared corpus (default: synthetic, 1440 clips)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--sets", default="librosa,egemaps,compare")
    ap.add_argument("--kernels", default="linear,rbf,poly,sigmoid")
    ap.add_argument("--speaker-norm", default="true", choices=["true", "false", "both"])
    ap.add_argument("--step", type=float, default=0.5, help="decades between grid points")
    ap.add_argument("--step2", type=float, default=0.5, help="the same for poly and sigmoid")
    ap.add_argument("--json", default=None, help="also write every grid point here")
    ap.add_argument("--replay", default=None, help="print an earlier --json against the space")
    ap.add_argument("--select-k", type=int, default=None, help="the pipeline's select_k")
    args = ap.parse_args()

    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpo-grid-"))
    root = corpus_for_bench(args.corpus, work)
    corpus = load_corpus(root)
    spec = load_spec("svm").with_overrides(corpus=root)
    space = {p.name: p for p in spec.space}
    base = spec.settings.merged({})
    print(
        f"corpus: {root} ({len(corpus.clips)} clips, "
        f"{'SYNTHETIC' if corpus.synthetic else 'real'}); scale = {base['svm']['scale']}; "
        f"shipped C {_fmt([space['C'].distribution.low, space['C'].distribution.high])}, "
        f"gamma {_fmt([space['gamma'].distribution.low, space['gamma'].distribution.high])}"
    )
    print(HEADER)
    if args.replay:  # the grid of an earlier run, against today's shipped space
        for r in json.loads(Path(args.replay).read_text()):
            print(_line({**r, **_summary(r["grid"], space)}, 0))
        return
    results = _run_grid(args, spec, corpus, space)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def _load(corpus, s):
    from hpo.kinds.svm.features import load_features

    return load_features(corpus, s)


if __name__ == "__main__":
    main()
