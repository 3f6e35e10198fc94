"""SVM study speed: feature extraction per set (cold), the cost of a six-fold trial per
feature set (warm, precomputed kernels), and the wall time of the default 100-trial study
from a cold cache, features included.

    python benchmarks/svm_bench.py [--corpus data/ravdess] [--trials 100] [--jobs 1] [--warm]

Without --corpus it measures on a full-size SYNTHETIC corpus (1440 clips); the figures are
about speed only (and the best value says nothing about real speech). ``--warm`` keeps the
feature caches (with ``--workdir`` from an earlier run): no cold extraction, the study's
per-trial figures only. It also prints what `hpo status` warns about the study (edges,
plateaus) and its largest tie: issue #17's budget target is fewer than 10 trials sharing
one value to 4 decimals.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", help="prepared corpus (default: synthetic, 1440 clips)")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1, help="study worker processes")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--warm", action="store_true", help="keep the feature caches")
    args = ap.parse_args()

    import optuna

    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec
    from hpo.kinds.svm.features import cache_path, load_features
    from hpo.study.run import run_study

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpo-bench-"))
    root = corpus_for_bench(args.corpus, work)
    corpus = load_corpus(root)
    spec = load_spec("svm").with_overrides(corpus=root)
    variants = spec.settings.feature_variants(spec.space)
    n = len(corpus.clips)
    print(
        f"corpus: {root} ({n} clips, {'SYNTHETIC' if corpus.synthetic else 'real'}), "
        f"{os.cpu_count()} cores"
    )
    for s in variants if not args.warm else ():
        cache_path(corpus, s).unlink(missing_ok=True)
        t = time.perf_counter()
        X = load_features(corpus, s)
        dt = time.perf_counter() - t
        print(f"{s.set} features ({X.shape[1]} a clip): {n / dt:.1f} clips/s ({dt:.1f} s, cold)")

    db = work / ("warm.db" if args.warm else "cold.db")
    db.unlink(missing_ok=True)
    for s in variants if not args.warm else ():
        cache_path(corpus, s).unlink(missing_ok=True)
    t = time.perf_counter()
    summary = run_study(spec, str(db), n_trials=args.trials, jobs=args.jobs)
    wall = time.perf_counter() - t
    print(
        f"{args.trials}-trial study from a {'warm' if args.warm else 'cold'} cache"
        f"{'' if args.warm else ', features included'}: {wall:.1f} s wall "
        f"(best accuracy {summary.best_value:.4f}, {summary.best_params})"
    )
    _space_report(str(db))
    study = optuna.load_study(study_name="svm", storage=f"sqlite:///{db}")
    per_set: dict[str, list[float]] = {}
    for tr in study.trials:
        if tr.state.name == "COMPLETE" and tr.datetime_complete:
            dt = (tr.datetime_complete - tr.datetime_start).total_seconds()
            per_set.setdefault(tr.params["feature_set"], []).append(dt)
    for name, times in sorted(per_set.items()):
        print(
            f"complete six-fold trial on {name}: median {statistics.median(times):.2f} s "
            f"over {len(times)} trials (Gram matrices built on first use)"
        )
    if not args.workdir and not args.corpus:
        shutil.rmtree(work, ignore_errors=True)


def _space_report(db: str) -> None:
    """What `hpo status` says about the space, and the largest tie of trial values."""
    from hpo.results.status import study_status

    (row,) = study_status(db, "svm")
    for w in row.get("warnings", []):
        print(f"warning: {w['message']}")
    tie = row.get("largest_tie")
    if tie:
        print(f"largest tie: {tie['trials']} complete trials at {tie['value']:.4f}")


if __name__ == "__main__":
    main()
