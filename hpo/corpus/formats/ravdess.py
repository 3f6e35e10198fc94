"""RAVDESS speech (Livingstone & Russo 2018): ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav``.

The file name carries every field: modality (01 full-AV, 02 video-only, 03 audio-only),
vocal channel (01 speech, 02 song), emotion (01-08), intensity (01 normal, 02 strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"),
repetition (01, 02), actor (01-24; odd male, even female). 8 emotions, 48 kHz; only
audio-only (modality 03) speech (vocal channel 01) clips are used.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass

from hpo.corpus.formats._base import Entry, Format, SynthClip, member_path

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
N_ACTORS = 24
SAMPLE_RATE = 48_000

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


class BadClipName(ValueError):
    """A file name that is not a valid RAVDESS clip name (message says why)."""


@dataclass(frozen=True, order=True)
class ClipId:
    """The seven fields of a RAVDESS file name."""

    modality: int
    channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def stem(self) -> str:
        return "-".join(
            f"{v:02d}"
            for v in (
                self.modality,
                self.channel,
                self.emotion,
                self.intensity,
                self.statement,
                self.repetition,
                self.actor,
            )
        )

    @property
    def filename(self) -> str:
        return self.stem + ".wav"

    @property
    def gender(self) -> str:
        return gender_of(self.actor)

    @property
    def emotion_label(self) -> str:
        return EMOTIONS[self.emotion - 1]


def gender_of(actor: int) -> str:
    """RAVDESS actors: odd numbers are male, even numbers female."""
    return "male" if actor % 2 else "female"


def parse_stem(stem: str) -> ClipId:
    """Parse a file stem (no extension) into its fields; raise BadClipName with the reason."""
    m = _NAME.match(stem)
    if not m:
        raise BadClipName("name does not match MM-VV-EE-II-SS-RR-AA")
    mod, ch, emo, inten, stmt, rep, actor = (int(g) for g in m.groups())
    checks = (
        (mod in (1, 2, 3), f"modality {mod:02d} is not 01-03"),
        (ch in (1, 2), f"vocal channel {ch:02d} is not 01-02"),
        (1 <= emo <= 8, f"emotion {emo:02d} is not 01-08"),
        (inten in (1, 2), f"intensity {inten:02d} is not 01-02"),
        (stmt in (1, 2), f"statement {stmt:02d} is not 01-02"),
        (rep in (1, 2), f"repetition {rep:02d} is not 01-02"),
        (1 <= actor <= 99, f"actor {actor:02d} is not a valid actor number"),
        # RAVDESS has no strong-intensity neutral clip.
        (not (emo == 1 and inten == 2), "neutral clips have no strong intensity (02)"),
    )
    for ok, why in checks:
        if not ok:
            raise BadClipName(why)
    return ClipId(mod, ch, emo, inten, stmt, rep, actor)


def speech_clip_ids(actors: range | list[int] | None = None) -> list[ClipId]:
    """Every clip id of the audio-only speech release: 60 per actor."""
    ids = []
    for actor in actors if actors is not None else range(1, N_ACTORS + 1):
        for emo in range(1, 9):
            for inten in (1,) if emo == 1 else (1, 2):
                for stmt in (1, 2):
                    for rep in (1, 2):
                        ids.append(ClipId(3, 1, emo, inten, stmt, rep, actor))
    return ids


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
