"""TESS, the Toronto Emotional Speech Set (Dupuis & Pichora-Fuller 2010): ``OAF_back_angry.wav``.

Two actresses, aged 64 (``OAF``) and 26 (``YAF``), say "Say the word ..." with 200 target
words in 7 emotions: 2,800 clips at 24,414 Hz, in one folder per speaker and emotion whose
names are inconsistent in case (``OAF_Fear``, ``YAF_fear``, ``OAF_Pleasant_surprise``,
``YAF_pleasant_surprised``). The file name alone says speaker, word and emotion (``ps`` is
pleasant surprise), so folders are not read. Two speakers allow two folds (leave one out).
"""

from __future__ import annotations

from hpo.corpus.formats._base import (
    FEMALE,
    Entry,
    Format,
    SynthClip,
    rotated,
    round_robin,
    wav_stem,
)

SPEAKERS = ("OAF", "YAF")
EMOTIONS = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fear": "fearful",
    "disgust": "disgust",
    "ps": "surprised",
}
# Spellings seen in copies of the release, for the emotion at the end of the name.
_ALIASES = {"pleasant_surprise": "ps", "pleasant_surprised": "ps", "surprise": "ps"}
# The release's folder per speaker and emotion, spelled as it is there.
FOLDERS = {
    "OAF": {
        "neutral": "OAF_neutral",
        "happy": "OAF_happy",
        "sad": "OAF_Sad",
        "angry": "OAF_angry",
        "fear": "OAF_Fear",
        "disgust": "OAF_disgust",
        "ps": "OAF_Pleasant_surprise",
    },
    "YAF": {
        "neutral": "YAF_neutral",
        "happy": "YAF_happy",
        "sad": "YAF_sad",
        "angry": "YAF_angry",
        "fear": "YAF_fear",
        "disgust": "YAF_disgust",
        "ps": "YAF_pleasant_surprised",
    },
}
WORDS = ("back", "bar", "base", "bath", "bean", "beg", "bite", "boat", "bone", "book")


def parse(stem: str) -> tuple[str, str, str] | str:
    """``(speaker, word, emotion code)`` of a file stem, or why it does not parse."""
    parts = stem.strip().split("_")
    if len(parts) < 3 or parts[0].upper() not in SPEAKERS or not all(parts):
        return "name does not parse: expected OAF_word_emotion or YAF_word_emotion"
    last_two = "_".join(parts[-2:]).lower()
    if len(parts) >= 4 and last_two in _ALIASES:  # OAF_back_pleasant_surprise
        emo, word = _ALIASES[last_two], parts[1:-2]
    else:
        emo, word = _ALIASES.get(parts[-1].lower(), parts[-1].lower()), parts[1:-1]
    if emo not in EMOTIONS:
        return f"emotion '{emo}' is not one of {', '.join(EMOTIONS)}"
    return parts[0].upper(), "_".join(word).lower(), emo


class Tess(Format):
    name = "tess"
    title = "TESS (Toronto Emotional Speech Set)"
    labels = tuple(EMOTIONS.values())
    extra_columns = ("word",)
    release_rate = 24_414
    max_speakers = len(SPEAKERS)
    default_clips = 70
    max_clips = len(WORDS) * len(EMOTIONS)

    def classify(self, member: str) -> Entry | str:
        got = wav_stem(member)
        if isinstance(got, str):
            return got
        parsed = parse(got[1])
        if isinstance(parsed, str):
            return parsed
        speaker, word, emo = parsed
        return Entry(
            member=member,
            out=f"clips/{speaker}/{speaker}_{word}_{emo}.wav",
            speaker=speaker,
            gender=FEMALE,
            label=EMOTIONS[emo],
            extra=(("word", word),),
        )

    def synth_plan(self, speakers: int, per_speaker: int) -> list[SynthClip]:
        plan = []
        for v, spk in enumerate(SPEAKERS[:speakers], start=1):
            groups = [
                [
                    SynthClip(
                        path=f"{FOLDERS[spk][code]}/{spk}_{word}_{code}.wav",
                        voice=v,
                        male=False,
                        label=label,
                        statement=1 + i % 2,
                        take=i,
                    )
                    for i, word in enumerate(rotated(WORDS, j))
                ]
                for j, (code, label) in enumerate(EMOTIONS.items())
            ]
            plan += round_robin(groups, per_speaker)
        return plan
