from __future__ import annotations

import pytest

from hpo.corpus.formats.ravdess import BadClipName, parse_stem, speech_clip_ids


def test_parse_official_name() -> None:
    c = parse_stem("03-01-06-02-01-02-12")
    assert (c.modality, c.channel, c.emotion, c.intensity, c.statement, c.repetition, c.actor) == (
        3,
        1,
        6,
        2,
        1,
        2,
        12,
    )
    assert c.emotion_label == "fearful" and c.gender == "female"
    assert c.filename == "03-01-06-02-01-02-12.wav"


@pytest.mark.parametrize(
    ("stem", "why"),
    [
        ("03-01-06-02-01-02", "does not match"),
        ("03-01-09-01-01-01-01", "emotion 09"),
        ("03-03-01-01-01-01-01", "vocal channel 03"),
        ("03-01-01-02-01-01-01", "neutral"),
        ("04-01-01-01-01-01-01", "modality 04"),
        ("03-01-01-01-01-01-00", "actor 00"),
    ],
)
def test_bad_names_say_why(stem: str, why: str) -> None:
    with pytest.raises(BadClipName, match=why):
        parse_stem(stem)


def test_speech_release_has_60_clips_per_actor() -> None:
    ids = speech_clip_ids()
    assert len(ids) == 1440 and len(set(ids)) == 1440
    assert sum(1 for c in ids if c.emotion == 1) == 96  # neutral: no strong intensity
