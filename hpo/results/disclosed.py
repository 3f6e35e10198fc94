"""What a trial's score was computed with that a reader must be told beside it: the
per-speaker normalisation (``hpo.kinds.speaker_norm``), for ``hpo status``, the report and
the export."""

from __future__ import annotations

from typing import Any

from optuna.trial import FrozenTrial

from hpo.errors import HpoError
from hpo.kinds import stored_spec
from hpo.kinds.speaker_norm import SpeakerNorm


def trial_speaker_norm(attrs: dict[str, Any], trial: FrozenTrial) -> SpeakerNorm | None:
    """The speaker normalisation ``trial`` ran with: the study's stored definition with
    the trial's parameters merged in (an older study's ``true`` is ``transductive``); None
    where the study stored no definition."""
    raw = attrs.get("spec")
    if not isinstance(raw, dict):
        return None
    try:
        merged = stored_spec(raw, str(attrs.get("name", "study"))).settings.merged(trial.params)
    except (HpoError, KeyError, TypeError, ValueError):
        return None
    for section in merged.values():  # svm: [features]; w2v: [model]
        if isinstance(section, dict) and "speaker_norm" in section:
            return SpeakerNorm.of(section)
    return SpeakerNorm()
