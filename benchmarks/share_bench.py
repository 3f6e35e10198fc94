"""Several trials on one device: K concurrent training processes, and a fold's fixed cost.

    python benchmarks/share_bench.py [--device cuda] [--ks 1,2,4,8] [--model base|tiny]
                                     [--steps 20] [--precision auto] [--skip-fold]

Part 1 starts K processes on one device (what ``hpo run --devices 0 --per-device K`` does),
each training its own classifier at the study's batch (``studies/w2v.toml``: 8 clips of
RAVDESS's mean length, 3.7 s) on the CNN-cache path the study uses. All start together
after a barrier; it prints each process's median step time and the aggregate clips/s, then
the default ``w2v`` study's projected wall time at the best K.

Part 2 runs one real fold through the study's own objective (``FinetuneObjective``) on a
SYNTHETIC corpus and prints the fold's wall time beside its step compute: what is left is
the fold's fixed cost (a fresh copy of the backbone, building the Trainer, validation).

Defaults: on a GPU, the wav2vec2-base architecture (random init, real dimensions) and
K = 1, 2, 4, 8; on a CPU, the tiny model and K = 1, 2, so the code path runs in CI-sized
time (the figures then say nothing about a GPU). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402


def _model_dir(size: str, root: Path) -> Path:
    """A random-init checkpoint of ``size`` saved with save_pretrained (as a real one)."""
    if size == "tiny":
        from hpo.kinds.w2v.backbone import tiny_backbone_dir

        return tiny_backbone_dir()
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    out = root / "wav2vec2-base-random"
    if not (out / "config.json").is_file():
        model = Wav2Vec2Model(Wav2Vec2Config())  # wav2vec2-base's architecture
        model.config.hpo_random_init = True
        model.save_pretrained(out)
        Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(out)
    return out


def _trainer_proc(i: int, a: argparse.Namespace, path: str, barrier, queue) -> None:
    """One training process: the study's step on cached CNN frames, timed after a barrier."""
    import numpy as np
    import torch

    from hpo.kinds.w2v.backbone import BackboneStore, quiet_transformers
    from hpo.kinds.w2v.bank import FeatureCache, FrameBank
    from hpo.kinds.w2v.device import autocast_dtype
    from hpo.kinds.w2v.schedule import make_optimizer

    quiet_transformers()
    if a.device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // a.k))
    device = torch.device("cuda:0" if a.device == "cuda" else "cpu")
    dtype = autocast_dtype(a.precision, device)
    model = BackboneStore(path, 0.05, device).classifier({"pooling": "mean", "dropout": 0.1}, i, 8)
    n = int(a.seconds * 16_000)
    x = torch.randn(a.batch, n, device=device) * 0.1
    feats, frames = model.cnn_batch(x, torch.full((a.batch,), n, device=device))
    rows = [feats[j, : int(f)].float().cpu().numpy() for j, f in enumerate(frames)]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    model.bank = FrameBank(FeatureCache(np.concatenate(rows), offsets), device)
    model.train()
    opt = make_optimizer(model, 5e-5, 0.01)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    ids, labels = torch.arange(a.batch), torch.arange(a.batch, device=device) % 8

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(clip_ids=ids, labels=labels).loss
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    for _ in range(3):
        step()  # warm-up: kernels, allocator
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    barrier.wait()
    t0 = time.perf_counter()
    times = [step() for _ in range(a.steps)]
    queue.put(
        {
            "proc": i,
            "median": statistics.median(times),
            "wall": time.perf_counter() - t0,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30
            if device.type == "cuda"
            else None,
        }
    )


def run_k(k: int, a: argparse.Namespace, path: Path) -> dict:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(k), ctx.Queue()
    a.k = k
    procs = [
        ctx.Process(target=_trainer_proc, args=(i, a, str(path), barrier, queue)) for i in range(k)
    ]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(r["wall"] for r in results)
    return {
        "k": k,
        "procs": sorted(results, key=lambda r: r["proc"]),
        "clips_s": k * a.steps * a.batch / wall,
    }


def _clock_folds(spent: dict[str, float], sync) -> None:
    """Add step and validation time to ``spent`` as the study's own fold runs: a clock on
    the fold's callback (every step) and around ``Trainer.evaluate`` (its forward passes)."""
    from transformers import Trainer

    from hpo.kinds.w2v.finetune import train as ft_train

    class Watch(ft_train._Watch):  # the fold's own callback, plus a clock
        def on_step_begin(self, *x, **k):
            sync()
            self.t = time.perf_counter()

        def on_step_end(self, *x, **k):
            sync()
            spent["steps"] += time.perf_counter() - self.t
            return super().on_step_end(*x, **k)

    real_evaluate = Trainer.evaluate

    def timed_evaluate(self, *x, **k):
        sync()
        t = time.perf_counter()
        out = real_evaluate(self, *x, **k)
        sync()
        spent["eval"] += time.perf_counter() - t
        return out

    ft_train._Watch, Trainer.evaluate = Watch, timed_evaluate


def _one_epoch_spec(corpus: Path, path: Path):
    """The shipped ``w2v`` study on ``corpus`` and model ``path``: one epoch (the cost is
    per fold). Its epoch stage stays on: a fold under a FixedTrial is never screened."""
    from hpo.kinds import load_spec

    spec = load_spec("w2v").with_overrides(corpus=corpus, model=str(path))
    s = spec.settings
    return dataclasses.replace(
        spec,
        settings=dataclasses.replace(s, training=dataclasses.replace(s.training, epochs=1.0)),
    )


def fold_cost(a: argparse.Namespace, path: Path, work: Path) -> dict:
    """One fold through ``FinetuneObjective``: wall time, step compute, validation."""
    import optuna
    import torch

    from hpo.corpus.manifest import load_corpus
    from hpo.kinds.w2v.finetune.objective import FinetuneObjective

    spent = {"steps": 0.0, "eval": 0.0}
    _clock_folds(spent, torch.cuda.synchronize if a.device == "cuda" else (lambda: None))
    corpus = corpus_for_bench(a.corpus, work, a.clips_per_actor)
    t = time.perf_counter()
    objective = FinetuneObjective(_one_epoch_spec(corpus, path), load_corpus(corpus), None)
    setup = time.perf_counter() - t
    trial = optuna.trial.FixedTrial(
        {"learning_rate": 5e-5, "warmup_ratio": 0.1, "max_grad_norm": 1.0, "pooling": "mean"}
    )
    fit = objective.fold_fn(trial, trial.params)
    folds = []
    for fold in objective.folds[:2]:  # the second fold: what every fold after the first pays
        spent.update(steps=0.0, eval=0.0)
        t = time.perf_counter()
        fit(fold)
        folds.append({"wall": time.perf_counter() - t, **spent})
    return {"setup": setup, "folds": folds}


def projected_hours(step_s: float, k: int, fixed_s: float) -> float:
    """The default w2v study (30 trials x 6 folds x its epochs) with K trials at once, each
    step taking ``step_s`` (measured with K processes sharing the device)."""
    from hpo.kinds import load_spec

    spec = load_spec("w2v")
    t = spec.settings.training
    train_clips, valid_clips = 1440 * 5 // 6, 1440 // 6
    steps = t.epochs * math.ceil(train_clips / t.batch_size)
    evals = t.epochs * math.ceil(valid_clips / t.batch_size) / 3  # a forward: ~1/3 of a step
    per_fold = (steps + evals) * step_s + fixed_s
    return math.ceil(spec.budget.n_trials / k) * spec.data.folds * per_fold / 3600


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    ap.add_argument("--ks", help="concurrent processes (default: 1,2,4,8 on a GPU, 1,2 on a CPU)")
    ap.add_argument(
        "--model", choices=("base", "tiny"), help="default: base on a GPU, tiny on a CPU"
    )
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8, help="default: studies/w2v.toml's")
    ap.add_argument("--seconds", type=float, default=3.7, help="RAVDESS's mean clip length")
    ap.add_argument("--precision", default="auto", choices=("auto", "no", "bf16", "fp16"))
    ap.add_argument("--corpus", help="prepared corpus for the fold (default: synthetic)")
    ap.add_argument(
        "--clips-per-actor", type=int, help="synthetic corpus size (default 60 GPU, 10 CPU)"
    )
    ap.add_argument("--skip-fold", action="store_true")
    a = ap.parse_args()

    import torch

    a.device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    gpu = a.device == "cuda"
    ks = [int(k) for k in (a.ks or ("1,2,4,8" if gpu else "1,2")).split(",")]
    a.model = a.model or ("base" if gpu else "tiny")
    a.clips_per_actor = a.clips_per_actor or (60 if gpu else 10)
    name = torch.cuda.get_device_name() if gpu else f"CPU, {os.cpu_count()} cores"
    print(
        f"torch {torch.__version__}, {name}, {a.model} model (random init), precision {a.precision}"
    )
    if not gpu:
        print("CPU: the code path only; GPU figures are to be taken on a GPU")
    with tempfile.TemporaryDirectory(prefix="hpo-share-") as tmp:
        work = Path(tmp)
        path = _model_dir(a.model, work)
        rows = [run_k(k, a, path) for k in ks]
        _print_ks(a, rows)
        fixed = 0.0 if a.skip_fold else _print_fold(a, fold_cost(a, path, work))
        best = max(rows, key=lambda r: r["clips_s"])
        step_s = statistics.median(p["median"] for p in best["procs"])
        print(
            f"[{a.device}] projected default w2v study (30 trials x 6 folds, no pruning) at "
            f"K={best['k']}: {projected_hours(step_s, best['k'], fixed):.2f} h "
            f"(K=1: {projected_hours(rows[0]['procs'][0]['median'], 1, fixed):.2f} h)"
        )


def _print_ks(a: argparse.Namespace, rows: list[dict]) -> None:
    one = rows[0]["clips_s"]
    for r in rows:
        steps = ", ".join(f"{p['median']:.3f}" for p in r["procs"])
        peak = [p["peak_gib"] for p in r["procs"] if p["peak_gib"] is not None]
        mem = f", peak {max(peak):.2f} GiB per process" if peak else ""
        print(
            f"[{a.device}] K={r['k']}: step s per process {steps}; aggregate "
            f"{r['clips_s']:.1f} clips/s = {r['clips_s'] / one:.2f}x K=1{mem}"
        )


def _print_fold(a: argparse.Namespace, fc: dict) -> float:
    """Print the worker's set-up and each fold's split; return the last fold's fixed cost."""
    print(f"[{a.device}] worker set-up (clips, backbone once, CNN cache): {fc['setup']:.1f} s")
    for i, f in enumerate(fc["folds"]):
        other = f["wall"] - f["steps"] - f["eval"]
        print(
            f"[{a.device}] fold {i} (1 epoch, batch {a.batch}): {f['wall']:.2f} s wall = "
            f"{f['steps']:.2f} s steps + {f['eval']:.2f} s validation + {other:.2f} s fixed cost"
        )
    last = fc["folds"][-1]
    return last["wall"] - last["steps"] - last["eval"]


if __name__ == "__main__":
    main()
