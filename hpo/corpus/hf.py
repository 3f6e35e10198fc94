"""The prepared corpus as a Hugging Face ``datasets.DatasetDict``, one split per speaker fold.

For users' own notebooks: ``load_dataset_dict("data/ravdess")["fold0"]`` holds fold 0's
clips (the speakers it validates), with the manifest's columns and the audio decoded on
access (16 kHz float32, read with soundfile: no FFmpeg or torchcodec needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.corpus.audio import TARGET_SR, load_clip
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import Corpus, load_corpus


def load_dataset_dict(corpus: str | Path | Corpus):
    """``DatasetDict`` with splits ``fold0`` … ``foldK-1`` (the manifest's folds).

    Each row has the manifest's columns (the adapter's own typed as numbers where they are
    numbers), ``label`` (the class index into the corpus's labels), ``emotion`` (the label's
    name), ``speaker``, and ``audio``:
    ``{"array": float32 samples, "sampling_rate": 16000, "path": ...}``.
    """
    import datasets

    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus)
    root = corpus.root
    rows = _rows(corpus)

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


def _rows(corpus: Corpus) -> list[dict[str, Any]]:
    """Manifest rows with one type a column: speakers and the adapter's columns as numbers
    when every value is one (Arrow wants a column to have one type)."""
    from hpo.corpus.manifest import typed_column

    rows = [c.row() for c in corpus.clips]
    extra = [k for k, _ in corpus.clips[0].extra]
    typed = {k: typed_column([r[k] for r in rows]) for k in extra}
    speakers = corpus.speakers.tolist()
    out = []
    for i, (c, y) in enumerate(zip(corpus.clips, corpus.label_ids, strict=True)):
        out.append(
            {
                **{k: getattr(c, k) for k in ("path", "gender", "fold", "duration", "channels")},
                **{k: getattr(c, k) for k in ("sample_rate", "source", "source_sha256")},
                "speaker": speakers[i],
                "emotion": c.label,
                "label": int(y),
                **{k: typed[k][i] for k in extra},
            }
        )
    return out
