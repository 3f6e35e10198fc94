"""Wav2Vec2 speed at the wav2vec2-base *size* (random init, real dimensions): a training
step with and without the CNN feature cache on the same batch (the study's batch size, clips
of RAVDESS's mean length), clips/s, peak memory, and the projected wall time of the default
``w2v`` study (30 trials x 6 folds, no pruning); then a tiny-model six-fold trial.

    python benchmarks/w2v_bench.py [--corpus data/synthetic] [--steps 5] [--skip-trial]
                                   [--device cuda] [--precision auto|no|bf16|fp16]

On a CPU it runs a few steps and says so: the GPU figures are what the study needs. The
model is randomly initialised (nothing is downloaded): timing depends on the architecture,
not on the weights.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402


def _autocast_dtype(device: str, precision: str):
    """The study's ``mixed_precision`` as both training paths apply it (auto: bf16/fp16 on
    a GPU, fp32 on a CPU; ``bf16`` runs on a CPU too)."""
    import torch

    from hpo.kinds.w2v.device import autocast_dtype

    return autocast_dtype(precision, torch.device(device))


def step_times(
    steps: int, batch: int, seconds: float, device: str, precision: str
) -> dict[str, float]:
    """Median seconds of a training step without and with the cache, and of the CNN alone."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from hpo.kinds.w2v.model import EmotionClassifier
    from hpo.kinds.w2v.schedule import make_optimizer

    torch.manual_seed(0)
    cfg = Wav2Vec2Config()  # the wav2vec2-base architecture: 7 conv layers, 12 x 768 encoder
    model = EmotionClassifier(Wav2Vec2Model(cfg), "mean", 0.1, 8).to(device)
    model.train()
    opt = make_optimizer(model, 5e-5, 0.01)
    n = int(seconds * 16_000)
    x = torch.randn(batch, n, device=device) * 0.1
    lengths = torch.full((batch,), n, device=device)
    labels = torch.arange(batch, device=device) % 8
    dtype = _autocast_dtype(device, precision)
    scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)

    def cnn():
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            return model.cnn_batch(x, lengths)

    _attach_cache(model, *cnn(), device)
    clip_ids = torch.arange(batch)

    def one(cached: bool) -> None:
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            if cached:
                out = model(clip_ids=clip_ids, labels=labels)
            else:
                out = model(input_values=x, lengths=lengths, labels=labels)
        scaler.scale(out.loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()

    return _medians(one, cnn, steps, device)


def _timed(fn, device: str) -> float:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def _attach_cache(model, feats, frame_lengths, device: str) -> None:
    """The CNN cache as the study uses it: one tensor on the device, a batch is one gather."""
    import numpy as np

    from hpo.kinds.w2v.bank import FeatureCache, FrameBank

    rows = [feats[i, : int(n)].float().cpu().numpy() for i, n in enumerate(frame_lengths)]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    model.bank = FrameBank(FeatureCache(np.concatenate(rows), offsets), device)


def _medians(one, cnn, steps: int, device: str) -> dict[str, float]:
    """Median step seconds, plain and cached (with each one's peak memory on a GPU), and
    of the CNN alone."""
    import torch

    _timed(lambda: one(False), device), _timed(lambda: one(True), device)  # warm-up
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = {"plain": statistics.median(_timed(lambda: one(False), device) for _ in range(steps))}
    if device == "cuda":
        out["peak_plain"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    out["cached"] = statistics.median(_timed(lambda: one(True), device) for _ in range(steps))
    if device == "cuda":
        out["peak_cached"] = torch.cuda.max_memory_allocated() / 2**30
    out["cnn"] = statistics.median(_timed(cnn, device) for _ in range(steps))
    return out


def projected_study_hours(step_s: float, batch: int) -> float:
    """The default w2v study (studies/w2v.toml): 30 trials x 6 folds x epochs x steps, with
    validation each epoch (a forward pass, about a third of a training step), no pruning."""
    from hpo.kinds import load_spec

    spec = load_spec("w2v")
    t = spec.settings.training
    train_clips, valid_clips = 1440 * 5 // 6, 1440 // 6
    steps = t.epochs * math.ceil(train_clips / t.batch_size)
    evals = t.epochs * math.ceil(valid_clips / t.batch_size) / 3
    per_step = step_s * t.batch_size / batch  # the measured step scaled to the study's batch
    return spec.budget.n_trials * spec.data.folds * (steps + evals) * per_step / 3600


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8, help="default: studies/w2v.toml's")
    ap.add_argument("--seconds", type=float, default=3.7, help="RAVDESS's mean clip length")
    ap.add_argument("--corpus", help="prepared corpus for the tiny trial (default: synthetic)")
    ap.add_argument("--skip-trial", action="store_true")
    ap.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    ap.add_argument(
        "--precision",
        choices=("auto", "no", "bf16", "fp16"),
        default="auto",
        help="as the study's mixed_precision (auto: bf16/fp16 on a GPU, fp32 on a CPU)",
    )
    args = ap.parse_args()

    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device == "cpu" and args.precision == "fp16":
        # Emulated on a CPU: one step took minutes here. bf16 has hardware support on many.
        ap.error("--precision fp16 needs a GPU; on a CPU use bf16 or no")
    return args


def print_step_figures(args: argparse.Namespace) -> None:
    """Time the base-sized step and print the figures: speed-up, clips/s, peak memory, the
    projected study, the CNN's share."""
    import torch

    device = args.device
    dtype = _autocast_dtype(device, args.precision)
    print(
        f"torch {torch.__version__}, {device}"
        + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else "")
        + f", {torch.get_num_threads()} threads, "
        f"precision {str(dtype).replace('torch.', '') if dtype else 'fp32'}"
    )
    if device == "cpu":
        print(f"CPU only: {args.steps} timed steps; GPU figures still to be taken on a GPU")
    t = step_times(args.steps, args.batch, args.seconds, device, args.precision)
    share = t["cnn"] / t["plain"]
    print(
        f"[{device}] base-sized training step, batch {args.batch} x {args.seconds} s: "
        f"{t['plain']:.3f} s without cache, {t['cached']:.3f} s with cache, "
        f"speed-up {t['plain'] / t['cached']:.2f}x; "
        f"{args.batch / t['plain']:.1f} / {args.batch / t['cached']:.1f} clips/s"
    )
    if device == "cuda":
        print(
            f"[{device}] peak GPU memory: {t['peak_plain']:.2f} GiB without cache, "
            f"{t['peak_cached']:.2f} GiB with cache (cache itself not counted)"
        )
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"[{device}] peak process memory (RSS): {peak:.2f} GiB")
    print(
        f"[{device}] projected default w2v study (30 trials x 6 folds, no pruning): "
        f"{projected_study_hours(t['cached'], args.batch):.1f} h with cache, "
        f"{projected_study_hours(t['plain'], args.batch):.1f} h without"
    )
    # Amdahl: the cache removes the frozen CNN's forward pass and nothing else.
    print(
        f"frozen CNN forward alone: {t['cnn']:.3f} s = {share:.0%} of a step without cache; "
        f"no cache can beat {1 / (1 - share):.2f}x here"
    )


def print_tiny_trial(corpus: str | None) -> None:
    """One six-fold trial of the tiny model, with a cold and then a warm CNN cache."""
    from hpo.kinds import load_spec
    from hpo.study.run import run_study

    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        root = corpus_for_bench(corpus, Path(work))
        spec = load_spec("w2v-tiny").with_overrides(corpus=root)
        for label in ("cold CNN cache", "warm CNN cache"):
            db = Path(work) / f"{label[:4]}.db"
            t = time.perf_counter()
            s = run_study(spec, str(db), n_trials=1)
            print(
                f"tiny-model trial (6 folds, {label}): {time.perf_counter() - t:.1f} s wall, "
                f"accuracy {s.best_value:.3f} (chance 0.125; random-init model, "
                "SYNTHETIC corpus unless --corpus)"
            )


def main() -> None:
    args = _args()
    print_step_figures(args)
    if not args.skip_trial:
        print_tiny_trial(args.corpus)


if __name__ == "__main__":
    main()
