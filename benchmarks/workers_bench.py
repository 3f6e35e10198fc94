"""SVM study throughput with 1, 2 and 4 worker processes on one SQLite file (warm feature
cache), and the trial states each run ends with.

    python benchmarks/workers_bench.py [--corpus data/ravdess] [--trials 40]
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
    args = ap.parse_args()

    from hpo.corpus.manifest import load_corpus
    from hpo.runner import run_study
    from hpo.spec import load_spec
    from hpo.svm.features import load_features

    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        root = corpus_for_bench(args.corpus, Path(work))
        spec = load_spec("studies/svm.toml").with_overrides(corpus=root)
        load_features(load_corpus(root), spec.settings.features)  # warm the cache
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
