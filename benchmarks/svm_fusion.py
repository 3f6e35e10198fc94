"""Issue #17's next steps, measured: early fusion of the feature sets, and feature
selection fitted per fold, against each set alone, by the study's six-fold actor CV.

    python benchmarks/svm_fusion.py [--corpus data/ravdess] [--speaker-norm true|false]
        [--select-k 250,500,1000,2000] [--only "compare;librosa+compare, select_k 1000"]

Every candidate gets the same small grid (linear: log10 C -2..2; rbf: log10 C -1..3 x log10
gamma -3..0; half-decade steps; scale-free parameters), and its best grid point is
printed. Fusion is the study's own fused feature_set ("librosa+compare"): the sets
concatenated with each scaled to unit mean squared norm, so each set weighs the same
whatever its size; the fused kernel is the mean of the sets' unit-norm kernels (linear
Gram, rbf distances), from the objective's cached Gram matrices (``kernels.fused_gram``).
Selection is the pipeline's ``select_k`` step: the k ComParE features with the highest
ANOVA F on the fold's training clips only, before standardisation. Beside each best, the
seconds its Gram matrices took beyond those already built (a fused set reuses its sets'
own) and the milliseconds a grid point takes on six folds (one trial's cost). Without
--corpus it runs on a full-size SYNTHETIC corpus, whose emotion cues are few prosodic
parameters: what helps there need not help on real speech, and the reverse.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402

SETS = ("librosa", "egemaps", "compare")


def _grid() -> list[dict]:
    half = [10 ** (i / 2) for i in range(-4, 5)]  # 0.01 .. 100
    pts = [{"kernel": "linear", "C": c} for c in half]
    for c in [10 ** (i / 2) for i in range(-2, 7)]:  # 0.1 .. 1000
        for g in [10 ** (i / 2) for i in range(-6, 1)]:  # 0.001 .. 1
            pts.append({"kernel": "rbf", "C": c, "gamma": g})
    return pts


def _best(objective, grams_of, base: dict) -> tuple[float, dict, float, float]:
    """(best accuracy, its grid point, seconds building the Gram matrices this candidate
    needs beyond those already cached, seconds per grid point: one trial's cost)."""
    from hpo.kinds.svm.kernels import kernels, precomputed_svc
    from hpo.trial.metrics import fold_scores

    t = time.perf_counter()
    grams = [grams_of(fold) for fold in objective.folds]
    setup, t = time.perf_counter() - t, time.perf_counter()
    best = (-1.0, {})
    for p in _grid():
        svm = {**base, **p}
        accs = []
        for fold, g in zip(objective.folds, grams, strict=True):
            k_train, k_valid = kernels(svm, g)
            pred = precomputed_svc(svm).fit(k_train, objective.y[fold.train]).predict(k_valid)
            accs.append(fold_scores(objective.y[fold.valid], pred, objective.n_classes)["accuracy"])
        best = max(best, (float(np.mean(accs)), p), key=lambda b: b[0])
    return (*best, setup, (time.perf_counter() - t) / len(_grid()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", help="prepared corpus (default: synthetic, 1440 clips)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--speaker-norm", default="true", choices=["true", "false"])
    ap.add_argument("--select-k", default="250,500,1000,2000")
    ap.add_argument(
        "--only", default=None, help="run only these candidates, ';'-separated, as printed"
    )
    args = ap.parse_args()

    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec
    from hpo.kinds.svm.objective import SvmObjective

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpo-fusion-"))
    root = corpus_for_bench(args.corpus, work)
    corpus = load_corpus(root)
    spec = load_spec("svm").with_overrides(corpus=root)
    objective = SvmObjective(spec, corpus)
    base = spec.settings.merged({})["svm"]
    norm = args.speaker_norm == "true"
    feats = {s: dataclasses.replace(spec.settings.features, set=s, speaker_norm=norm) for s in SETS}
    print(
        f"corpus: {root} ({len(corpus.clips)} clips, "
        f"{'SYNTHETIC' if corpus.synthetic else 'real'}), speaker_norm={norm}, "
        f"{len(_grid())} grid points per candidate"
    )
    candidates: list[tuple[str, object]] = [
        (s, lambda fold, s=s: objective.gram(feats[s], fold, base)) for s in SETS
    ]
    for combo in (("librosa", "egemaps"), ("librosa", "compare"), ("egemaps", "compare"), SETS):
        fused = dataclasses.replace(feats["librosa"], set="+".join(combo))
        candidates.append(("+".join(combo), lambda fold, f=fused: objective.gram(f, fold, base)))
    # Selection as the study searches it: the k best of each set's own features (so of
    # ComParE's alone where k is below the other sets' sizes), on ComParE and its fusions.
    for k in map(int, args.select_k.split(",")):
        select = {**base, "select_k": k}  # the pipeline's own step, as a study runs it
        for name in ("compare", "librosa+compare", "egemaps+compare", "+".join(SETS)):
            f = dataclasses.replace(feats["librosa"], set=name)
            candidates.append(
                (
                    f"{name}, select_k {k}",
                    lambda fold, f=f, sel=select: objective.gram(f, fold, sel),
                )
            )
    if args.only:
        candidates = [c for c in candidates if c[0] in args.only.split(";")]
    for name, grams_of in candidates:
        acc, p, setup, point = _best(objective, grams_of, base)
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()
        )
        print(
            f"{name:<26} best {acc:.4f}  ({shown})  Gram matrices {setup:.0f} s, "
            f"{point * 1000:.0f} ms a grid point (6 folds)",
            flush=True,
        )


if __name__ == "__main__":
    main()
