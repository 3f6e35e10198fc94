"""EmoDB, the Berlin Database of Emotional Speech (Burkhardt et al. 2005): ``wav/03a01Fa.wav``.

Positions 1-2 the speaker, 3-5 the text (a01 ... b10), 6 the emotion as the initial of its
German name, 7 the version (a, b, ...). Ten actors, five women and five men, as published
with the corpus; 535 utterances at 16 kHz. The emotion letters: W(ut)/Ärger anger, L(angeweile)
boredom, E(kel) disgust, A(ngst) fear, F(reude) happiness, T(rauer) sadness, N neutral.
"""

from __future__ import annotations

import re

from hpo.corpus.formats._base import (
    FEMALE,
    MALE,
    Entry,
    Format,
    SynthClip,
    rotated,
    round_robin,
    wav_stem,
)

SPEAKERS = {
    "03": MALE,
    "08": FEMALE,
    "09": FEMALE,
    "10": MALE,
    "11": MALE,
    "12": MALE,
    "13": FEMALE,
    "14": FEMALE,
    "15": MALE,
    "16": FEMALE,
}
EMOTIONS = {
    "N": "neutral",
    "F": "happy",
    "T": "sad",
    "W": "angry",
    "A": "fearful",
    "E": "disgust",
    "L": "bored",
}
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
# Loose on purpose: each part is then checked on its own, so the reason names the part.
_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([a-z])([a-z])$", re.IGNORECASE)


class EmoDB(Format):
    name = "emodb"
    title = "EmoDB (Berlin Database of Emotional Speech)"
    labels = tuple(EMOTIONS.values())
    extra_columns = ("text", "version")
    release_rate = 16_000
    max_speakers = len(SPEAKERS)
    default_clips = 49
    max_clips = len(TEXTS) * len(EMOTIONS)

    def classify(self, member: str) -> Entry | str:
        got = wav_stem(member)
        if isinstance(got, str):
            return got
        m = _NAME.match(got[1])
        if not m:
            return "name does not parse: expected speaker, text, emotion, version as in 03a01Fa"
        speaker, text, emo, version = m.group(1), m.group(2).lower(), m.group(3).upper(), m.group(4)
        if speaker not in SPEAKERS:
            return f"speaker {speaker} is not one of EmoDB's ({', '.join(SPEAKERS)})"
        if emo not in EMOTIONS:
            return f"emotion letter {emo} is not one of {''.join(EMOTIONS)}"
        stem = f"{speaker}{text}{emo}{version.lower()}"
        return Entry(
            member=member,
            out=f"clips/{speaker}/{stem}.wav",
            speaker=speaker,
            gender=SPEAKERS[speaker],
            label=EMOTIONS[emo],
            extra=(("text", text), ("version", version.lower())),
        )

    def synth_plan(self, speakers: int, per_speaker: int) -> list[SynthClip]:
        plan = []
        for spk in list(SPEAKERS)[:speakers]:
            # Per emotion, the texts in turn; emotions round-robin so any count is balanced.
            groups = [
                [
                    SynthClip(
                        path=f"wav/{spk}{text}{letter}a.wav",
                        voice=int(spk),
                        male=SPEAKERS[spk] == MALE,
                        label=label,
                        statement=1 if text.startswith("a") else 2,
                        take=i,
                    )
                    for i, text in enumerate(rotated(TEXTS, j))
                ]
                for j, (letter, label) in enumerate(EMOTIONS.items())
            ]
            plan += round_robin(groups, per_speaker)
        return plan
