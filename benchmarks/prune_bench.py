"""In-fold pruning (the epoch stage) on the tiny random-init model: the same study, same
seeds, with and without ``[pruner] epoch_stage``; prints the share of training epochs saved
and the best value of each.

    python benchmarks/prune_bench.py [--trials 20] [--clips-per-actor 16] [--epochs 6]

The corpus is SYNTHETIC and the model random-init: this measures how much work the stage
saves and whether it keeps the best trial, nothing about real accuracy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402, F401 - sets HF_HUB_OFFLINE


def run(work: Path, corpus: Path, trials: int, epochs: float, stage: bool) -> tuple:
    import optuna
    import tomli_w

    from hpo.config.paths import shipped_studies
    from hpo.config.study import load_spec
    from hpo.study.run import run_study

    raw = __import__("tomllib").loads(shipped_studies()["w2v-tiny"].read_text())
    raw["data"]["corpus"] = str(corpus)
    raw["training"].update({"epochs": epochs, "tensorboard_dir": str(work / "runs")})
    raw["pruner"].update({"epoch_stage": stage, "epoch_startup_trials": 4})
    path = work / f"stage-{stage}.toml"
    path.write_text(tomli_w.dumps(raw))
    db = f"sqlite:///{work / f'stage-{stage}.db'}"
    t = time.perf_counter()
    run_study(load_spec(path), db, n_trials=trials)
    wall = time.perf_counter() - t
    study = optuna.load_study(study_name="w2v-tiny", storage=db)
    epochs_run = sum(t.user_attrs.get("epochs_run", 0.0) for t in study.trials)
    screened = sum(
        "epoch stage" in str(t.user_attrs.get("pruned_reason", "")) for t in study.trials
    )
    return study.best_value, epochs_run, wall, screened


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--clips-per-actor", type=int, default=16)
    ap.add_argument("--epochs", type=float, default=6.0)
    args = ap.parse_args()

    from hpo.corpus.prepare import prepare
    from hpo.corpus.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="hpo-prune-") as tmp:
        work = Path(tmp)
        synthesize(work / "src", clips_per_actor=args.clips_per_actor, seed=3)
        prepare(work / "src", work / "corpus")
        rows = {s: run(work, work / "corpus", args.trials, args.epochs, s) for s in (False, True)}
    (b0, e0, w0, _), (b1, e1, w1, n1) = rows[False], rows[True]
    print(
        f"tiny random-init model, SYNTHETIC corpus ({24 * args.clips_per_actor} clips), "
        f"{args.trials} trials, {args.epochs:g} epochs a fold, CPU"
    )
    print(f"without epoch stage: best {b0:.4f}, {e0:.0f} epochs trained, {w0:.0f} s")
    print(
        f"with epoch stage:    best {b1:.4f}, {e1:.0f} epochs trained, {w1:.0f} s, "
        f"{n1} trials stopped inside their first fold"
    )
    print(
        f"epochs saved: {1 - e1 / e0:.1%} (target >= 40%); best value difference "
        f"{100 * (b1 - b0):+.2f} points (target within 0.5)"
    )


if __name__ == "__main__":
    main()
