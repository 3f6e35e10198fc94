"""Frozen-backbone (``w2v-probe``) speed: layer-cache build clips/s and size on disk, the time
of one six-fold probe trial per pooling, and the projected 100-trial study; for the tiny
model also the six-fold fine-tuning trial of the same backbone (target: probe <= 1/5).

    python benchmarks/probe_bench.py [--base-clips-per-actor 10] [--skip-base]

Both backbones are RANDOMLY INITIALISED (nothing is downloaded; the base one has
wav2vec2-base's real dimensions) and the corpora SYNTHETIC: speed only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import corpus_for_bench  # noqa: E402

# (pooling, probe_layer): the output's mean, the learned layer mix's mean, stats, attention.
POOLINGS = (("mean", -1), ("mean", "weighted"), ("stats", -1), ("attention", -1))


def probe_figures(label: str, model: str, corpus: Path, work: Path) -> float:
    """Print cache and trial figures; return the mean six-fold probe trial time."""
    import optuna

    from hpo.corpus.manifest import load_corpus
    from hpo.kinds import load_spec
    from hpo.kinds.w2v.probe.objective import build_layer_cache
    from hpo.study.run import run_study

    spec = load_spec("w2v-probe").with_overrides(corpus=corpus, model=model)
    c = load_corpus(corpus)
    t = time.perf_counter()
    cache = build_layer_cache(c, model, spec.settings.training.max_seconds)
    dt = time.perf_counter() - t
    print(
        f"[{label}] layer cache: {len(c.clips)} clips x {cache.n_layers} layers in {dt:.1f} s "
        f"({len(c.clips) / dt:.1f} clips/s), {cache.size_bytes / 2**20:.0f} MiB on disk"
    )
    times = []
    for pooling, layer in POOLINGS:
        db = f"sqlite:///{work / f'{label}-{pooling}-{layer}.db'}"
        one = load_spec_with_pooling(spec, pooling, work, layer)
        t = time.perf_counter()
        run_study(one, db, n_trials=1)
        dt = time.perf_counter() - t
        value = optuna.load_study(study_name=one.name, storage=db).best_value
        times.append(dt)
        print(
            f"[{label}] six-fold probe trial, {pooling} of layer {layer}: {dt:.1f} s ({value:.3f})"
        )
    mean = sum(times) / len(times)
    scale = 1440 / len(c.clips)
    print(
        f"[{label}] projected 100-trial probe study on 1440 clips: "
        f"{100 * mean * scale / 60:.1f} min (trial time x clips ratio {scale:.1f}), CPU"
    )
    return mean


def load_spec_with_pooling(spec, pooling: str, work: Path, layer=None):
    import tomli_w

    from hpo.kinds import load_spec

    raw = dict(spec.raw)
    raw["space"] = {**raw["space"], "pooling": {"type": "categorical", "choices": [pooling]}}
    if layer is not None:  # a probe: one layer (fine-tuning reads the output)
        raw["space"]["probe_layer"] = {"type": "categorical", "choices": [layer]}
    raw["name"] = f"{spec.name}-{pooling}-{layer}"
    raw["training"] = {**raw["training"], "tensorboard_dir": str(work / "runs")}
    path = work / f"{raw['name']}-{abs(hash(spec.settings.model.name))}.toml"
    path.write_text(tomli_w.dumps(raw))
    return load_spec(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base-clips-per-actor", type=int, default=10)
    ap.add_argument("--skip-base", action="store_true")
    args = ap.parse_args()

    from hpo.kinds import load_spec
    from hpo.study.run import run_study

    with tempfile.TemporaryDirectory(prefix="hpo-probe-") as tmp:
        work = Path(tmp)
        corpus = corpus_for_bench(None, work)
        probe = probe_figures("tiny", "tiny", corpus, work)
        spec = load_spec("w2v-tiny").with_overrides(corpus=corpus)
        spec = load_spec_with_pooling(spec, "stats", work)
        for cache in ("cold", "warm"):  # the first run builds the CNN cache
            t = time.perf_counter()
            run_study(spec, f"sqlite:///{work / f'ft-{cache}.db'}", n_trials=1)
            ft = time.perf_counter() - t
            print(f"[tiny] six-fold fine-tuning trial (stats, {cache} CNN cache): {ft:.1f} s")
        print(f"[tiny] probe / fine-tune (warm) = {probe / ft:.3f} (target <= 0.2)")
        if args.skip_base:
            return
        import torch
        from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

        from hpo.corpus.prepare import prepare
        from hpo.corpus.synth import synthesize

        torch.manual_seed(0)
        base = work / "random-base"
        model = Wav2Vec2Model(Wav2Vec2Config())
        model.config.hpo_random_init = True  # every output says RANDOMLY INITIALISED
        model.save_pretrained(base)
        Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(base)
        synthesize(work / "small-src", clips_per_actor=args.base_clips_per_actor, seed=5)
        prepare(work / "small-src", work / "small")
        probe_figures("base-size", str(base), work / "small", work)


if __name__ == "__main__":
    main()
