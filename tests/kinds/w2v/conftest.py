from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.kinds.w2v.settings import MAX_SECONDS


@pytest.fixture(scope="session", autouse=True)
def _models_dir(tmp_path_factory: pytest.TempPathFactory):
    """The tiny backbone is built once per session, outside the checkout."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HPO_MODELS", str(tmp_path_factory.mktemp("w2v-models")))
        yield


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The tiny backbone and TensorBoard runs are written relative to the working directory."""
    root: Path = tmp_path_factory.getbasetemp() / "w2v-cwd"
    root.mkdir(exist_ok=True)
    monkeypatch.chdir(root)
    from hpo.kinds.w2v.backbone import quiet_transformers

    quiet_transformers()
    return root


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The one device every w2v test runs on: the training device hpo itself would pick (a
    GPU when one is visible), or ``HPO_TEST_DEVICE``. No test names a device but this."""
    from hpo.kinds.w2v.device import training_device

    return torch.device(os.environ.get("HPO_TEST_DEVICE") or training_device())


@pytest.fixture(scope="session")
def precisions(device: torch.device) -> list[torch.dtype]:
    """The autocast precisions the device runs: bf16 everywhere (CPU autocast included),
    fp16 where the device has it."""
    out = [torch.bfloat16]
    if device.type == "cuda":
        out.append(torch.float16)
    else:
        try:
            with torch.autocast("cpu", dtype=torch.float16):
                torch.ones(2, 2) @ torch.ones(2, 2)
            out.append(torch.float16)
        except RuntimeError:
            pass
    return out


@pytest.fixture(scope="session")
def w2v_corpus(prepared: Path, tmp_path_factory: pytest.TempPathFactory, device) -> Path:
    """The session corpus, copied once, with the tiny backbone's CNN cache and layer cache
    built into it for clips cut at ``MAX_SECONDS``: the w2v tests read it and never write it
    (a study on it finds both caches), so no test pays for them or depends on test order."""
    from hpo.corpus.manifest import load_corpus
    from hpo.kinds.w2v.backbone import new_classifier
    from hpo.kinds.w2v.clips import load_waves, max_samples
    from hpo.kinds.w2v.finetune.cache import load_or_build
    from hpo.kinds.w2v.probe.objective import build_layer_cache

    root = tmp_path_factory.mktemp("w2v-corpus") / "corpus"
    _subset(prepared, root, every=4)  # 96 clips: 4 per actor, 16 per validation fold
    corpus = load_corpus(root)
    waves, prep = load_waves(corpus, "tiny", max_samples(MAX_SECONDS))
    model = new_classifier("tiny", {"pooling": "mean", "dropout": 0.0}, 0, len(corpus.labels))
    load_or_build(model, waves, corpus, prep, device)
    build_layer_cache(corpus, "tiny", MAX_SECONDS, None, device)
    return root


@pytest.fixture
def small_corpus(w2v_corpus: Path, tmp_path: Path) -> Path:
    """A 24-clip corpus (one clip a speaker) of one's own, without caches: for tests that
    build, damage and rebuild them."""
    root = tmp_path / "small"
    _subset(w2v_corpus, root, every=4)
    return root


def _subset(src: Path, dst: Path, every: int) -> None:
    """Every ``every``-th clip of the prepared corpus ``src`` (with their speakers, folds and
    labels) as a corpus of its own at ``dst``, without caches."""
    from hpo.corpus.manifest import load_corpus, write_corpus

    corpus = load_corpus(src)
    keep = [c for i, c in enumerate(corpus.clips) if i % every == 0]
    for c in keep:
        (dst / c.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / c.path, dst / c.path)
    write_corpus(dst, keep, corpus.meta)


def three_fold_corpus(src: Path, dst: Path, clips_per_speaker: int = 4) -> Path:
    """The fewest clips a study of several folds runs on: the session corpus ``src``'s 6
    speakers, ``clips_per_speaker`` clips each, in 3 speaker folds of 2 (so nested CV trains
    an outer fold on 4 speakers, an inner one on 2), without caches."""
    import dataclasses

    from hpo.corpus.folds import assign_folds
    from hpo.corpus.manifest import load_corpus, write_corpus

    corpus = load_corpus(src)
    per_speaker: dict[str, list] = {}
    for c in corpus.clips:
        per_speaker.setdefault(c.speaker, []).append(c)
    keep = [c for clips in per_speaker.values() for c in clips[:clips_per_speaker]]
    genders = {c.speaker: c.gender for c in keep}
    fold_of = assign_folds(genders, 3, genders)
    for c in keep:
        (dst / c.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / c.path, dst / c.path)
    clips = [dataclasses.replace(c, fold=fold_of[c.speaker]) for c in keep]
    write_corpus(dst, clips, {**corpus.meta, "folds": 3, "n_folds": 3})
    return dst
