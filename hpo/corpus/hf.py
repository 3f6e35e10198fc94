"""The prepared corpus as a Hugging Face ``datasets.DatasetDict``, one split per actor fold.

For users' own notebooks: ``load_dataset_dict("data/ravdess")["fold0"]`` holds fold 0's
clips (the actors it validates), with the manifest's columns and the audio decoded on
access (16 kHz float32, read with soundfile: no FFmpeg or torchcodec needed).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from hpo.corpus.audio import TARGET_SR, load_clip
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import Corpus, load_corpus


def load_dataset_dict(corpus: str | Path | Corpus):
    """``DatasetDict`` with splits ``fold0`` … ``foldK-1`` (the manifest's folds).

    Each row has the manifest's fields, ``label`` (0-7) and ``audio``:
    ``{"array": float32 samples, "sampling_rate": 16000, "path": ...}``.
    """
    import datasets

    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus)
    root = corpus.root
    rows = [
        {**asdict(c), "label": int(y)} for c, y in zip(corpus.clips, corpus.label_ids, strict=True)
    ]

    def decode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        batch["audio"] = [
            {"array": load_clip(str(root / p)), "sampling_rate": TARGET_SR, "path": str(root / p)}
            for p in batch["path"]
        ]
        return batch

    splits = {}
    for fold in corpus_folds(corpus):
        ds = datasets.Dataset.from_list([rows[i] for i in fold.valid])
        splits[f"fold{fold.index}"] = ds.with_transform(decode)
    return datasets.DatasetDict(splits)
