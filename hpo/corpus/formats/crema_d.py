"""CREMA-D (Cao et al. 2014): ``AudioWAV/1001_DFA_ANG_XX.wav``.

Actor (1001-1091), sentence (12 three-letter codes), emotion (ANG, DIS, FEA, HAP, NEU, SAD)
and level (LO, MD, HI, XX unspecified); 7,442 clips of 91 actors at 16 kHz. Genders come
from the release's ``VideoDemographics.csv`` (``ActorID``, ``Sex``) when the source holds
it or ``--demographics`` names it; otherwise from the table below, copied from that file
(48 men, 43 women, as the corpus's documentation says).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from hpo.corpus.formats._base import (
    FEMALE,
    MALE,
    UNKNOWN,
    Classified,
    Entry,
    Format,
    SynthClip,
    member_path,
    rotated,
    round_robin,
    wav_stem,
)
from hpo.corpus.source import Source
from hpo.errors import CorpusError

DEMOGRAPHICS = "VideoDemographics.csv"
ACTORS = range(1001, 1092)
# The women among actors 1001-1091 in VideoDemographics.csv; every other actor is a man.
WOMEN = frozenset(
    [1002, 1003, 1004, 1006, 1007, 1008, 1009, 1010, 1012, 1013, 1018, 1020, 1021, 1024]
    + [1025, 1028, 1029, 1030, 1037, 1043, 1046, 1047, 1049, 1052, 1053, 1054, 1055, 1056]
    + [1058, 1060, 1061, 1063, 1072, 1073, 1074, 1075, 1076, 1078, 1079, 1082, 1084, 1089]
    + [1091]
)
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
EMOTIONS = {
    "NEU": "neutral",
    "HAP": "happy",
    "SAD": "sad",
    "ANG": "angry",
    "FEA": "fearful",
    "DIS": "disgust",
}
LEVELS = ("LO", "MD", "HI", "XX")
_NAME = re.compile(r"^(\d{4})_([a-z]{3})_([a-z]{3})_([a-z]{2})$", re.IGNORECASE)


def published_gender(actor: int) -> str:
    if actor not in ACTORS:
        return UNKNOWN
    return FEMALE if actor in WOMEN else MALE


def read_demographics(text: str, where: str) -> dict[str, str]:
    """``{actor id: gender}`` from VideoDemographics.csv's ``ActorID`` and ``Sex`` columns."""
    rows = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    cols = {(c or "").strip().lower(): c for c in rows.fieldnames or []}
    if "actorid" not in cols or "sex" not in cols:
        raise CorpusError(f"{where}: needs the columns ActorID and Sex (has: {', '.join(cols)})")
    sexes = {"male": MALE, "female": FEMALE}
    return {
        (r[cols["actorid"]] or "").strip(): sexes.get((r[cols["sex"]] or "").strip().lower(), "")
        for r in rows
    }


class CremaD(Format):
    name = "crema-d"
    title = "CREMA-D"
    labels = tuple(EMOTIONS.values())
    extra_columns = ("sentence", "level")
    release_rate = 16_000
    max_speakers = len(ACTORS)
    default_clips = 72
    max_clips = len(SENTENCES) * len(EMOTIONS)

    def __init__(self, **options: Path | None) -> None:
        super().__init__(**options)
        self.genders: dict[str, str] = {}  # from the demographics file, once it is read

    def entries(self, source: Source, members: list[str]) -> Classified:
        given = self.options.get("demographics")
        found = sorted(
            (m for m in members if member_path(m).name.lower() == DEMOGRAPHICS.lower()),
            key=lambda m: (m.count("/"), m),
        )
        self.genders = {}
        if given is not None:
            self.genders = read_demographics(_read_text(Path(given)), str(given))
        elif found:
            text = source.read(found[0]).decode("utf-8", errors="replace")
            self.genders = read_demographics(text, found[0])
        rest = [m for m in members if m not in found[:1]]
        c = super().entries(source, rest)
        return Classified(c.entries, c.rejected, frozenset(found[:1]))

    def classify(self, member: str) -> Entry | str:
        got = wav_stem(member)
        if isinstance(got, str):
            return got
        m = _NAME.match(got[1])
        if not m:
            return "name does not parse: expected ACTOR_SENTENCE_EMOTION_LEVEL (1001_DFA_ANG_XX)"
        actor, sentence, emo, level = (g.upper() for g in m.groups())
        gender = self.genders.get(actor, published_gender(int(actor)))
        if actor not in self.genders and int(actor) not in ACTORS:
            return f"actor {actor} is not one of CREMA-D's (1001-1091) nor in {DEMOGRAPHICS}"
        for part, value, known in (
            ("sentence", sentence, SENTENCES),
            ("emotion", emo, tuple(EMOTIONS)),
            ("level", level, LEVELS),
        ):
            if value not in known:
                return f"{part} {value} is not one of {', '.join(known)}"
        stem = f"{actor}_{sentence}_{emo}_{level}"
        return Entry(
            member=member,
            out=f"clips/{actor}/{stem}.wav",
            speaker=actor,
            gender=gender,
            label=EMOTIONS[emo],
            extra=(("sentence", sentence), ("level", level)),
        )

    def synth_plan(self, speakers: int, per_speaker: int) -> list[SynthClip]:
        plan = []
        for actor in ACTORS[:speakers]:
            groups = [
                [
                    SynthClip(
                        path=f"AudioWAV/{actor}_{s}_{code}_{_level(s, code)}.wav",
                        voice=actor,
                        male=published_gender(actor) == MALE,
                        label=label,
                        intensity=2 if _level(s, code) == "HI" else 1,
                        statement=1 + i % 2,
                        take=i,
                    )
                    for i, s in enumerate(rotated(SENTENCES, j))
                ]
                for j, (code, label) in enumerate(EMOTIONS.items())
            ]
            plan += round_robin(groups, per_speaker)
        return plan

    def synth_files(self, speakers: int) -> dict[str, str]:
        # Laid out as the release's file: quoted header and strings, bare numbers.
        lines = ['"ActorID","Age","Sex","Race","Ethnicity"']
        for i, actor in enumerate(ACTORS[:speakers]):
            sex = "Female" if published_gender(actor) == FEMALE else "Male"
            lines.append(f'{actor},{20 + (7 * i) % 50},"{sex}","Unknown","Not Hispanic"')
        return {DEMOGRAPHICS: "\n".join(lines) + "\n"}


def _level(sentence: str, emotion: str) -> str:
    """In the release only sentence IEO was spoken at graded levels (neutral excepted)."""
    return "HI" if sentence == "IEO" and emotion != "NEU" else "XX"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None
