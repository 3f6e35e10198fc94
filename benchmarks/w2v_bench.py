"""Wav2Vec2 speed: a training step with and without the CNN feature cache on the same batch
(wav2vec2-base-sized, random init, batch 4 x 3.5 s), and a tiny-model six-fold trial.

    python benchmarks/w2v_bench.py [--corpus data/synthetic] [--steps 5] [--skip-trial]

The base-sized model is randomly initialised (nothing is downloaded): the timing depends on
the architecture, not on the weights.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402


def step_times(steps: int, batch: int, seconds: float) -> tuple[float, float]:
    import torch
    from transformers import Wav2Vec2Config

    from hpo.w2v.model import Wav2Vec2EmotionClassifier
    from hpo.w2v.schedule import make_optimizer

    torch.manual_seed(0)
    cfg = Wav2Vec2Config()  # the wav2vec2-base architecture: 7 conv layers, 12 x 768 encoder
    cfg.pooling, cfg.num_labels, cfg.classifier_dropout = "mean", 8, 0.1
    model = Wav2Vec2EmotionClassifier(cfg)
    model.wav2vec2.freeze_feature_encoder()
    model.train()
    opt = make_optimizer(model, 5e-5, 0.01)
    n = int(seconds * 16_000)
    x = torch.randn(batch, n) * 0.1
    lengths = torch.full((batch,), n)
    labels = torch.arange(batch) % 8
    feats, frame_lengths = model._cnn_batch(x, lengths)  # what the cache holds

    def one(cached: bool) -> float:
        t = time.perf_counter()
        if cached:
            out = model(extract_features=feats, frame_lengths=frame_lengths, labels=labels)
        else:
            out = model(input_values=x, lengths=lengths, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - t

    one(False), one(True)  # warm-up
    plain = statistics.median(one(False) for _ in range(steps))
    cached = statistics.median(one(True) for _ in range(steps))
    return plain, cached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.5)
    ap.add_argument("--corpus", help="prepared corpus for the tiny trial (default: synthetic)")
    ap.add_argument("--skip-trial", action="store_true")
    args = ap.parse_args()

    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    plain, cached = step_times(args.steps, args.batch, args.seconds)
    print(
        f"base-sized training step, batch {args.batch} x {args.seconds} s: "
        f"{plain:.3f} s without cache, {cached:.3f} s with cache, "
        f"speed-up {plain / cached:.2f}x (CNN share of a step: {1 - cached / plain:.0%})"
    )
    if args.skip_trial:
        return

    from hpo.runner import run_study
    from hpo.spec import load_spec

    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        root = corpus_for_bench(args.corpus, Path(work))
        spec = load_spec("studies/w2v-tiny.toml").with_overrides(corpus=root)
        for label in ("cold CNN cache", "warm CNN cache"):
            db = Path(work) / f"{label[:4]}.db"
            t = time.perf_counter()
            s = run_study(spec, str(db), n_trials=1)
            print(
                f"tiny-model trial (6 folds, {label}): {time.perf_counter() - t:.1f} s wall, "
                f"accuracy {s.best_value:.3f} (chance 0.125; random-init model, "
                "SYNTHETIC corpus unless --corpus)"
            )


if __name__ == "__main__":
    main()
