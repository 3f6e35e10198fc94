"""SVM study speed: feature extraction throughput, trials/min with a warm feature cache, and
the wall time of a 100-trial study from a cold cache.

    python benchmarks/svm_bench.py [--corpus data/ravdess] [--trials 100] [--jobs 1]

Without --corpus it measures on a full-size SYNTHETIC corpus (1440 clips); the figures are
about speed only.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    ap.add_argument("--warm-trials", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1, help="study worker processes")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    from hpo.config.study import load_spec
    from hpo.corpus.manifest import load_corpus
    from hpo.kinds.svm.features import cache_path, load_features
    from hpo.study.run import run_study

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpo-bench-"))
    root = corpus_for_bench(args.corpus, work)
    corpus = load_corpus(root)
    spec = load_spec("studies/svm.toml").with_overrides(corpus=root)
    print(
        f"corpus: {root} ({len(corpus.clips)} clips, "
        f"{'SYNTHETIC' if corpus.synthetic else 'real'}), {os.cpu_count()} cores"
    )

    cache = cache_path(corpus, spec.settings.features)
    cache.unlink(missing_ok=True)
    t = time.perf_counter()
    load_features(corpus, spec.settings.features)
    feat_s = time.perf_counter() - t
    print(
        f"feature extraction: {len(corpus.clips) / feat_s:.1f} clips/s "
        f"({feat_s:.1f} s for {len(corpus.clips)} clips, cold cache)"
    )

    db = work / "warm.db"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    run_study(spec, str(db), n_trials=args.warm_trials, jobs=args.jobs)
    warm_s = time.perf_counter() - t
    print(
        f"study throughput (warm cache, {args.jobs} worker(s)): "
        f"{args.warm_trials / warm_s * 60:.1f} trials/min"
    )

    cache.unlink(missing_ok=True)
    db = work / "cold.db"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    summary = run_study(spec, str(db), n_trials=args.trials, jobs=args.jobs)
    cold_s = time.perf_counter() - t
    print(
        f"{args.trials}-trial study from a cold cache: {cold_s:.1f} s wall "
        f"(best accuracy {summary.best_value:.4f})"
    )
    if not args.workdir and not args.corpus:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
