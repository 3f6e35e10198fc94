"""SAVEE, Surrey Audio-Visual Expressed Emotion (Haq & Jackson 2009): ``AudioData/DC/a01.wav``.

Four male speakers (DC, JE, JK, KL), 120 clips each at 44.1 kHz: 15 sentences per emotion
and 30 neutral. The name's initial letter(s) give the emotion (a anger, d disgust, f fear,
h happiness, n neutral, sa sadness, su surprise), the digits the sentence; the folder gives
the speaker. Copies that flatten the folders put the speaker first (``DC_a01.wav``).
"""

from __future__ import annotations

import re

from hpo.corpus.formats._base import Entry, Format, SynthClip, rotated, round_robin, wav_stem

SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTIONS = {
    "n": "neutral",
    "h": "happy",
    "sa": "sad",
    "a": "angry",
    "f": "fearful",
    "d": "disgust",
    "su": "surprised",
}
# "sa"/"su" before "a": the longer prefix wins.
_NAME = re.compile(r"^(?:([a-z]{2})_)?(sa|su|a|d|f|h|n)(\d{1,2})$", re.IGNORECASE)
INFO = """'DC', 'JE', 'JK' and 'KL' are four male speakers recorded for the SAVEE database.
Audio files are WAV files sampled at 44.1 kHz. The initial letter(s) of the file name give
the emotion class ('a', 'd', 'f', 'h', 'n', 'sa', 'su'), the digits the sentence number.
(SYNTHETIC stand-in written by hpo.)
"""


class Savee(Format):
    name = "savee"
    title = "SAVEE (Surrey Audio-Visual Expressed Emotion)"
    labels = tuple(EMOTIONS.values())
    extra_columns = ("sentence",)
    release_rate = 44_100
    max_speakers = len(SPEAKERS)
    default_clips = 70
    max_clips = 15 * len(EMOTIONS)

    def classify(self, member: str) -> Entry | str:
        got = wav_stem(member)
        if isinstance(got, str):
            return got
        folder, stem = got
        m = _NAME.match(stem)
        if not m:
            return "name does not parse: expected an emotion code and a number, as in a01"
        speaker = (m.group(1) or folder).upper()
        if speaker not in SPEAKERS:
            return f"no speaker: the folder or a prefix must be one of {', '.join(SPEAKERS)}"
        code, number = m.group(2).lower(), int(m.group(3))
        if number < 1:
            return f"sentence number {m.group(3)} is not 01 or more"
        return Entry(
            member=member,
            out=f"clips/{speaker}/{code}{number:02d}.wav",
            speaker=speaker,
            gender="male",
            label=EMOTIONS[code],
            extra=(("sentence", f"{number:02d}"),),
        )

    def synth_plan(self, speakers: int, per_speaker: int) -> list[SynthClip]:
        plan = []
        for v, spk in enumerate(SPEAKERS[:speakers], start=1):
            groups = [
                [
                    SynthClip(
                        path=f"AudioData/{spk}/{code}{n:02d}.wav",
                        voice=100 + v,
                        male=True,
                        label=label,
                        statement=1 + n % 2,
                        take=n,
                    )
                    for n in rotated(range(1, 16), j)
                ]
                for j, (code, label) in enumerate(EMOTIONS.items())
            ]
            plan += round_robin(groups, per_speaker)
        return plan

    def synth_files(self, speakers: int) -> dict[str, str]:
        return {"AudioData/Info.txt": INFO}
