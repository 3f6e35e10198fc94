"""``hpo predict``: a label and per-label probabilities for wav files from a model made by
``hpo train`` (the labels of the corpus it was trained on).

The label is the model's own decision, the one cross-validation scored (an SVM's: its SVC's
decision function). The probabilities are per-label estimates calibrated apart from it (an
SVM's: Platt scaling on out-of-fold decision values over the training corpus's speaker
folds), so on a borderline clip the most probable label can differ from the label."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpo.corpus.audio import BadAudio, to_16k_mono
from hpo.errors import HpoError
from hpo.kinds import get_kind, kind_names
from hpo.kinds.speaker_norm import (
    MIN_GIVEN_CLIPS,
    MIN_STATS_CLIPS,
    Groups,
    SpeakerNorm,
    given_groups,
    loo_groups,
)
from hpo.trained.train import META


def _read_clip(path: Path) -> np.ndarray:
    try:
        y, _ = to_16k_mono(path.read_bytes())
    except IsADirectoryError:
        raise HpoError(f"{path}: is a directory, not a wav file") from None
    except OSError as e:
        raise HpoError(f"{path}: cannot read ({e.strerror})") from None
    except BadAudio as e:
        raise HpoError(f"{path}: {e}") from None
    return y


def read_meta(model_dir: Path) -> dict:
    meta_path = model_dir / META
    if not meta_path.is_file():
        raise HpoError(f"{model_dir}: not a model made by 'hpo train' (no {META})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kind = meta["kind"]
        meta["config"], meta["labels"]  # noqa: B018 - present, or the file is damaged
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise HpoError(f"{meta_path}: damaged; train the model again with 'hpo train'") from None
    if kind not in kind_names():
        raise HpoError(f"{meta_path}: unknown kind {kind!r}")
    return meta


def enrolment_files(paths: list[Path]) -> list[Path]:
    """``--enrol`` arguments as wav files: a directory gives its ``*.wav`` (sorted)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() == ".wav" and q.is_file())
            if not found:
                raise HpoError(f"{p}: --enrol names a directory with no .wav file")
            files += found
        else:
            files.append(p)
    return files


def speaker_statistics(
    model_dir: Path,
    norm: SpeakerNorm,
    clips: list[Path],
    enrol: list[Path],
    norm_from: str | None,
) -> tuple[Groups | None, dict | None]:
    """Which clips' statistics normalise which given clip, and what to say about it:
    ``(groups over clips + enrolment files, {"mode", "statistics", "warning"})``; (None,
    None) for a model without speaker normalisation. A one-line refusal when the model
    needs statistics and the command names none (``--enrol`` or ``--speaker-norm-from``)."""
    if not norm.on:
        if enrol or norm_from:
            flag = "--enrol" if enrol else "--speaker-norm-from"
            raise HpoError(
                f"{model_dir}: this model has no speaker normalisation; leave out {flag}"
            )
        return None, None
    if enrol and norm_from:
        raise HpoError("give either --enrol or --speaker-norm-from given, not both")
    if not enrol and norm_from != "given":
        raise HpoError(
            f"{model_dir}: this model normalises features per speaker (speaker norm: "
            f"{norm.short()}); give --enrol DIR_OR_FILE (clips of the same speaker, apart "
            "from those classified) or --speaker-norm-from given (the given clips as one speaker)"
        )
    said = {"mode": norm.short()}
    if enrol:
        same = {p.resolve() for p in clips} & {p.resolve() for p in enrol}
        if same:
            raise HpoError(
                f"{sorted(same)[0]}: both classified and an enrolment clip; a clip never "
                "normalises itself: give enrolment clips apart from those classified"
            )
        if len(enrol) < MIN_STATS_CLIPS:
            raise HpoError(f"--enrol: give at least {MIN_STATS_CLIPS} enrolment clips")
        what = f"{len(enrol)} enrolment clip(s) given with --enrol"
        if norm.mode == "enrolment" and norm.enrolment == "neutral":
            what += ", taken as neutral speech (the model's enrolment is neutral clips)"
        return given_groups(len(clips), len(enrol)), {**said, "statistics": what}
    least = MIN_GIVEN_CLIPS if norm.mode == "transductive" else MIN_STATS_CLIPS + 1
    if len(clips) < least:
        raise HpoError(
            f"{model_dir}: --speaker-norm-from given needs at least {least} clips of one "
            "speaker (all clips given are taken as one speaker); or give --enrol"
        )
    if norm.mode == "transductive":  # as cross-validation: every clip among its statistics
        groups, what = [(np.arange(len(clips)),) * 2], f"all {len(clips)} given clips"
    else:  # as cross-validation: never the scored clip itself
        groups, what = loo_groups(len(clips)), f"the other {len(clips) - 1} given clips"
    warning = (
        f"statistics from {what}, taken as one speaker: clips of one speaker and of "
        "varied emotions, or the estimate is off (clips of one emotion erase its cue); "
        "--enrol gives them from enrolment clips"
    )
    return groups, {**said, "statistics": what, "warning": warning}


def predict(
    model_dir: Path,
    clips: list[Path],
    enrol: list[Path] | None = None,
    norm_from: str | None = None,
) -> dict:
    """``{"labels": [...], "random_init_model": bool, "synthetic_training_corpus": bool,
    "speaker_norm": None | {"mode", "statistics", ("warning")},
    "predicted": {path: label}, "predictions": {path: [p, ...]}}``.

    ``enrol``: enrolment clips (files or directories of wav files) of the speaker of
    ``clips``, whose statistics normalise them; ``norm_from="given"``: the given clips'
    own (see ``speaker_statistics``)."""
    meta = read_meta(model_dir)
    kind = get_kind(meta["kind"])
    enrol_files = enrolment_files(enrol or [])
    groups, norm_said = speaker_statistics(
        model_dir, kind.speaker_norm(meta), clips, enrol_files, norm_from
    )
    waves = [_read_clip(p) for p in [*clips, *enrol_files]]
    decided, probs = kind.classify(model_dir, meta, waves, groups)
    if len(probs) and len(probs[0]) != len(meta["labels"]):
        # A label without a probability (or the reverse) would name every prediction wrong.
        raise HpoError(
            f"{model_dir}: the model gives {len(probs[0])} probabilities for "
            f"{len(meta['labels'])} labels; train it again with 'hpo train'"
        )
    return {
        "labels": meta["labels"],
        "random_init_model": bool(meta.get("random_init_model", False)),
        "synthetic_training_corpus": bool(meta.get("trained_on", {}).get("synthetic")),
        "speaker_norm": norm_said,
        "predicted": {str(p): meta["labels"][int(i)] for p, i in zip(clips, decided, strict=True)},
        "predictions": {
            str(p): [float(x) for x in row] for p, row in zip(clips, probs, strict=True)
        },
    }
