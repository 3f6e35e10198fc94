"""In-fold pruning (the epoch stage) on the tiny random-init model: the same 20-trial study
with and without ``[pruner] epoch_stage``; prints the share of training epochs saved and the
best value of each.

    python benchmarks/prune_bench.py [--study w2v-tiny|w2v-probe] [--trials 20]
                                     [--clips-per-actor 4] [--epochs N]
                                     [--seed 42] [--warmup 2] [--percentile 50] [--grid]

Three runs on the same corpus:

* ``off``: the study as shipped (TPE, Wilcoxon between folds), no epoch stage.
* ``paired``: the stage on, with ``off``'s parameters enqueued in the same order. Every fold
  is seeded, so a trial the stage lets through scores exactly what it scored in ``off``:
  the difference in best value is the stage's doing alone (did it stop the best trial?).
* ``tpe``: the stage on, TPE choosing as it goes. From the first stopped trial on TPE sees
  another history and samples other trials, so this best differs from ``off`` by the luck
  of two searches as well as by the stage.

``--grid`` replays ``off``'s screening-fold curves under other warm-up/percentile settings
(``hpo.trial.screening.replay``: the same trials in the same order; it differs from a live
run where the Wilcoxon pruner stopped a trial before it reached the screening fold).

The corpus is SYNTHETIC and the model random-init: this measures how much work the stage
saves and whether it keeps the best trial, nothing about real accuracy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402, F401 - sets HF_HUB_OFFLINE


def run(work: Path, corpus: Path, args, mode: str, enqueue: list[dict] | None = None) -> dict:
    import optuna
    import tomli_w

    from hpo.config.paths import shipped_studies
    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec
    from hpo.study.open import open_study
    from hpo.study.run import run_study

    raw = tomllib.loads(shipped_studies()[args.study].read_text())
    raw["data"]["corpus"] = str(corpus)
    raw["model"]["name"] = "tiny"
    if "probe_layer" in raw.get("space", {}):  # the tiny model's 3 layer outputs
        raw["space"]["probe_layer"] = {"type": "categorical", "choices": ["weighted", 0, 1, 2]}
    raw["sampler"]["seed"] = args.seed
    raw["training"]["tensorboard_dir"] = str(work / "runs")
    if args.epochs:
        raw["training"]["epochs"] = args.epochs
    raw["pruner"].update(
        epoch_stage=mode != "off",
        epoch_warmup=args.warmup,
        epoch_percentile=args.percentile,
        epoch_startup_trials=args.startup,
    )
    path = work / f"{mode}.toml"
    path.write_text(tomli_w.dumps(raw))
    spec, db = load_spec(path), f"sqlite:///{work / f'{mode}.db'}"
    if enqueue:
        study = open_study(spec, db, load_corpus(corpus))
        for params in enqueue:
            study.enqueue_trial(params)
    t = time.perf_counter()
    run_study(spec, db, n_trials=args.trials)
    wall = time.perf_counter() - t
    trials = optuna.load_study(study_name=spec.name, storage=db).get_trials(deepcopy=False)
    return {
        "wall": wall,
        "params": [t.params for t in trials],
        "values": cv_means(trials),
        "curves": [list(t.user_attrs.get("screen_curve", [])) for t in trials],
        "epochs": [float(t.user_attrs.get("epochs_run", 0.0)) for t in trials],
        "screened": sum(
            "epoch stage" in str(t.user_attrs.get("pruned_reason", "")) for t in trials
        ),
        "pruner": {k: v for k, v in vars(spec.pruner).items() if k.startswith("epoch_")},
        "epochs_a_fold": spec.settings.training.epochs,
    }


def cv_means(trials: list) -> list[float | None]:
    """Each trial's CV mean, None for a trial that has none: a pruned trial's Optuna value
    is its last report (one fold's score under the Wilcoxon pruner), not a mean over folds,
    and a best taken over it would compare one fold with six."""
    from optuna.trial import TrialState

    return [t.value if t.state == TrialState.COMPLETE else None for t in trials]


def best(values: list[float | None]) -> float:
    """The best CV mean of ``cv_means``; NaN when no trial completed."""
    return max((v for v in values if v is not None), default=float("nan"))


def replay_row(off: dict, warmup: int, pct: float, startup: int) -> str:
    from hpo.trial.screening import replay

    stops = replay(off["curves"], warmup, pct, startup)
    # A stopped trial trains `stop` epochs of the screening fold, nothing else.
    spent = [e if s is None else s for e, s in zip(off["epochs"], stops, strict=True)]
    kept = [v for v, s in zip(off["values"], stops, strict=True) if s is None]
    d = 100 * (best(kept) - best(off["values"]))
    return (
        f"  warmup {warmup} percentile {pct:>4g}: {1 - sum(spent) / sum(off['epochs']):6.1%} "
        f"epochs saved, {sum(s is not None for s in stops):2d} stopped, best {d:+.2f} points"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--clips-per-actor", type=int, default=4)
    ap.add_argument("--epochs", type=float, default=None, help="default: the study's")
    ap.add_argument(
        "--study",
        default="w2v-tiny",
        choices=["w2v-tiny", "w2v-probe"],
        help="fine-tuning (w2v-tiny) or a frozen-backbone probe (w2v-probe), on the tiny model",
    )
    ap.add_argument("--seed", type=int, default=42, help="the sampler's seed")
    ap.add_argument("--corpus-seed", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="[pruner] epoch_warmup")
    ap.add_argument("--percentile", type=float, default=50.0, help="[pruner] epoch_percentile")
    ap.add_argument("--startup", type=int, default=4, help="[pruner] epoch_startup_trials")
    ap.add_argument("--grid", action="store_true", help="replay other stage settings")
    ap.add_argument("--skip-tpe", action="store_true", help="only the off and paired runs")
    args = ap.parse_args()

    from hpo.corpus.prepare import prepare
    from hpo.corpus.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="hpo-prune-") as tmp:
        work = Path(tmp)
        synthesize(work / "src", clips_per_actor=args.clips_per_actor, seed=args.corpus_seed)
        prepare(work / "src", work / "corpus")
        off = run(work, work / "corpus", args, "off")
        paired = run(work, work / "corpus", args, "paired", enqueue=off["params"])
        tpe = None if args.skip_tpe else run(work, work / "corpus", args, "tpe")

    print(
        f"tiny random-init model, SYNTHETIC corpus ({24 * args.clips_per_actor} clips, "
        f"seed {args.corpus_seed}), {args.trials} trials, {off['epochs_a_fold']:g} epochs a fold, "
        f"sampler seed {args.seed}, CPU; stage {paired['pruner']}"
    )
    b0, e0 = best(off["values"]), sum(off["epochs"])
    print(f"off:    best {b0:.4f}, {e0:.0f} epochs trained, {off['wall']:.0f} s")
    for name, r in (("paired", paired), ("tpe", tpe)):
        if r is None:
            continue
        e1 = sum(r["epochs"])
        print(
            f"{name + ':':<7} best {best(r['values']):.4f}, {e1:.0f} epochs trained, "
            f"{r['wall']:.0f} s, {r['screened']} trials stopped inside their first fold; "
            f"epochs saved {1 - e1 / e0:.1%} (target >= 40%), best "
            f"{100 * (best(r['values']) - b0):+.2f} points (target within 0.5)"
        )
    if args.grid:
        print(f"replay of off's curves (startup {args.startup} trials):")
        for warmup in (1, 2, 3):
            for pct in (25.0, 33.0, 50.0):
                print(replay_row(off, warmup, pct, args.startup))


if __name__ == "__main__":
    main()
