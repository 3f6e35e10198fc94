"""SVM study throughput with 1, 2 and 4 worker processes on one SQLite file (warm feature
cache), the trial states each run ends with, and the cold-cache case: 8 trials with
``--jobs 1`` and ``--jobs 4`` when no features exist yet (features are built once, before
the workers start; target: jobs 4 within 1.5x of jobs 1).

    python benchmarks/workers_bench.py [--corpus data/ravdess] [--trials 40] [--cold-trials 8]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--cold-trials", type=int, default=8)
    ap.add_argument("--cold-only", action="store_true")
    args = ap.parse_args()

    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec
    from hpo.kinds.svm.features import cache_path, load_features
    from hpo.study.run import run_study

    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        root = corpus_for_bench(args.corpus, Path(work))
        spec = load_spec("svm").with_overrides(corpus=root)
        corpus = load_corpus(root)
        cold = {}
        for jobs in (1, 4):
            for variant in spec.settings.feature_variants(spec.space):
                cache_path(corpus, variant).unlink(missing_ok=True)  # every set: truly cold
            t = time.perf_counter()
            run_study(
                spec, str(Path(work) / f"cold{jobs}.db"), n_trials=args.cold_trials, jobs=jobs
            )
            cold[jobs] = time.perf_counter() - t
            print(f"cold cache, {args.cold_trials} trials, --jobs {jobs}: {cold[jobs]:.1f} s")
        print(f"cold cache: --jobs 4 / --jobs 1 = {cold[4] / cold[1]:.2f} (target <= 1.5)")
        if args.cold_only:
            return
        for variant in spec.settings.feature_variants(spec.space):
            load_features(corpus, variant)  # warm the caches
        for jobs in (int(j) for j in args.workers.split(",")):
            db = Path(work) / f"w{jobs}.db"
            t = time.perf_counter()
            run_study(spec, str(db), n_trials=args.trials, jobs=jobs)
            dt = time.perf_counter() - t
            con = sqlite3.connect(db)
            states = Counter(s for (s,) in con.execute("SELECT state FROM trials"))
            con.close()
            print(
                f"{jobs} worker(s): {args.trials / dt * 60:.1f} trials/min "
                f"({dt:.1f} s); states {dict(states)}"
            )


if __name__ == "__main__":
    main()
