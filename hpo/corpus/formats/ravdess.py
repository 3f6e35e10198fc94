"""RAVDESS speech (Livingstone & Russo 2018): ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav``.

24 actors (odd numbers male, even female), 8 emotions, 48 kHz; only audio-only (modality
03) speech (vocal channel 01) clips are used. The name convention itself is in
``hpo.corpus.ravdess``; this module is what the generic preparation needs from it.
"""

from __future__ import annotations

from dataclasses import astuple

from hpo.corpus.formats._base import Entry, Format, SynthClip, member_path
from hpo.corpus.ravdess import (
    EMOTIONS,
    N_ACTORS,
    SAMPLE_RATE,
    BadClipName,
    ClipId,
    gender_of,
    parse_stem,
    speech_clip_ids,
)

_VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def entry_of(member: str, cid: ClipId) -> Entry:
    return Entry(
        member=member,
        out=f"clips/Actor_{cid.actor:02d}/{cid.filename}",
        speaker=str(cid.actor),
        gender=cid.gender,
        label=cid.emotion_label,
        extra=(
            ("emotion_id", str(cid.emotion)),
            ("intensity", str(cid.intensity)),
            ("statement", str(cid.statement)),
            ("repetition", str(cid.repetition)),
        ),
        # The manifest keeps the order it always had: by clip id (emotion first, actor last).
        order=astuple(cid),
    )


class Ravdess(Format):
    name = "ravdess"
    title = "RAVDESS (speech, audio-only)"
    labels = EMOTIONS
    extra_columns = ("emotion_id", "intensity", "statement", "repetition")
    release_rate = SAMPLE_RATE
    max_speakers = N_ACTORS
    default_clips = 60
    max_clips = 60

    def recognises(self, member: str) -> bool:
        try:
            parse_stem(member_path(member).stem)
        except BadClipName:
            return False
        return True

    def classify(self, member: str) -> Entry | str:
        p = member_path(member)
        ext = p.suffix.lower()
        if ext in _VIDEO_EXT:
            return "video file: only the audio-only .wav clips are used"
        if ext != ".wav":
            return f"not a .wav file ({ext or 'no extension'})"
        try:
            cid = parse_stem(p.stem)
        except BadClipName as e:
            return f"name does not parse: {e}"
        if cid.modality != 3:
            return f"video modality {cid.modality:02d}: only audio-only (03) clips are used"
        if cid.channel != 1:
            return "song clip (vocal channel 02): only speech (01) is used"
        return entry_of(member, cid)

    def synth_plan(self, speakers: int, per_speaker: int) -> list[SynthClip]:
        return [
            SynthClip(
                path=f"Actor_{c.actor:02d}/{c.filename}",
                voice=c.actor,
                male=gender_of(c.actor) == "male",
                label=c.emotion_label,
                intensity=c.intensity,
                statement=c.statement,
                take=c.repetition,
            )
            for a in range(1, speakers + 1)
            for c in _balanced_ids(a, per_speaker)
        ]


def _balanced_ids(actor: int, per_actor: int) -> list[ClipId]:
    """The first ``per_actor`` clips of an actor, taken round-robin across emotions."""
    by_emo: dict[int, list[ClipId]] = {}
    for c in speech_clip_ids([actor]):
        by_emo.setdefault(c.emotion, []).append(c)
    order: list[ClipId] = []
    while any(by_emo.values()):
        for e in sorted(by_emo):
            if by_emo[e]:
                order.append(by_emo[e].pop(0))
    return sorted(order[:per_actor])
