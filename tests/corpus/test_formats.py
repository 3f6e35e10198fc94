"""Corpus adapters: each reads its corpus's published file-name convention (case and folder
quirks included), says why a name is not a clip, and is told from the file names alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import soundfile as sf

from hpo.cli.data import FORMATS_HELP
from hpo.corpus.formats import FORMATS, detect, get_format
from hpo.corpus.formats._base import Entry
from hpo.errors import CorpusError
from tests.helpers import RELEASE_SIZES


def _entry(fmt: str, member: str) -> Entry:
    e = get_format(fmt).classify(member)
    assert isinstance(e, Entry), (member, e)
    return e


@pytest.mark.parametrize(
    ("fmt", "member", "speaker", "gender", "label"),
    [
        # EmoDB: speaker 03 is a man, 08 a woman; W(ut) anger, L(angeweile) boredom.
        ("emodb", "wav/03a01Wa.wav", "03", "male", "angry"),
        ("emodb", "wav/08b10Lb.wav", "08", "female", "bored"),
        ("emodb", "download/wav/16A05TA.WAV", "16", "female", "sad"),  # any case, any depth
        # CREMA-D: the published demographics (1001 a man, 1002 a woman).
        ("crema-d", "AudioWAV/1001_DFA_ANG_XX.wav", 1001, "male", "angry"),
        ("crema-d", "AudioWAV/1002_ieo_fea_hi.wav", 1002, "female", "fearful"),
        # TESS: folder names vary in case; the file name carries speaker, word and emotion.
        ("tess", "OAF_Fear/OAF_back_fear.wav", "OAF", "female", "fearful"),
        ("tess", "YAF_pleasant_surprised/YAF_bite_ps.wav", "YAF", "female", "surprised"),
        ("tess", "x/YAF_bite_pleasant_surprise.wav", "YAF", "female", "surprised"),
        # SAVEE: the folder is the speaker; flattened copies prefix it.
        ("savee", "AudioData/DC/sa03.wav", "DC", "male", "sad"),
        ("savee", "AudioData/kl/SU15.WAV", "KL", "male", "surprised"),
        ("savee", "ALL/JE_a01.wav", "JE", "male", "angry"),
        ("savee", "AudioData/JK/n30.wav", "JK", "male", "neutral"),
        # Zips written by some Windows tools separate folders with backslashes.
        ("savee", "AudioData\\JE\\h02.wav", "JE", "male", "happy"),
        ("ravdess", "Actor_02\\03-01-05-01-01-01-02.wav", 2, "female", "angry"),
    ],
)
def test_release_names_parse(
    fmt: str, member: str, speaker: object, gender: str, label: str
) -> None:
    e = _entry(fmt, member)
    assert (e.gender, e.label) == (gender, label)
    assert e.speaker == str(speaker) and e.out.startswith("clips/") and e.out.endswith(".wav")


def test_equivalent_spellings_are_one_clip_id() -> None:
    # Case variants of one clip map to one output, so the second is a duplicate, not a clip.
    assert _entry("emodb", "wav/03a01Wa.wav").out == _entry("emodb", "WAV/03A01WA.WAV").out
    tess = get_format("tess")
    assert tess.classify("a/OAF_back_ps.wav").out == tess.classify("b/oaf_back_PS.wav").out
    assert _entry("savee", "AudioData/DC/a1.wav").out == _entry("savee", "x/DC_a01.wav").out


@pytest.mark.parametrize(
    ("fmt", "member", "why"),
    [
        ("emodb", "wav/05a01Fa.wav", "speaker 05 is not one of EmoDB's"),
        ("emodb", "wav/03a01Xa.wav", "emotion letter X"),
        ("emodb", "wav/03a01F.wav", "name does not parse"),
        ("emodb", "lablaut/03a01Fa.lab", "not a .wav file (.lab)"),
        ("crema-d", "AudioWAV/1001_XYZ_ANG_XX.wav", "sentence XYZ"),
        ("crema-d", "AudioWAV/1001_DFA_BOR_XX.wav", "emotion BOR"),
        ("crema-d", "AudioWAV/1001_DFA_ANG_ZZ.wav", "level ZZ"),
        ("crema-d", "AudioWAV/0999_DFA_ANG_XX.wav", "actor 0999 is not one of CREMA-D's"),
        ("crema-d", "AudioMP3/1001_DFA_ANG_XX.mp3", "not a .wav file (.mp3)"),
        ("tess", "OAF_angry/OAF_back_bored.wav", "emotion 'bored'"),
        ("tess", "OAF_angry/XAF_back_angry.wav", "name does not parse"),
        ("savee", "AudioData/XX/a01.wav", "no speaker"),
        ("savee", "AudioData/DC/b01.wav", "name does not parse"),
        ("savee", "AudioData/DC/a00.wav", "sentence number 00"),
    ],
)
def test_names_that_are_not_clips_say_why(fmt: str, member: str, why: str) -> None:
    got = get_format(fmt).classify(member)
    assert isinstance(got, str) and why in got, got


def test_crema_d_genders_come_from_the_demographics_file_when_given(tmp_path: Path) -> None:
    from hpo.corpus.source import Source

    (tmp_path / "VideoDemographics.csv").write_text(
        '"ActorID","Age","Sex","Race","Ethnicity"\n1001,51,"Female","x","y"\n1200,30,"Male","x","y"\n'
    )
    adapter = get_format("crema-d")
    members = [
        "VideoDemographics.csv",
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "AudioWAV/1200_DFA_ANG_XX.wav",
    ]
    got = adapter.entries(Source(tmp_path), members)
    # The file is read (not listed as rejected), it overrides the built-in table, and an
    # actor it lists is known even outside 1001-1091.
    assert got.consumed == {"VideoDemographics.csv"} and got.rejected == []
    assert [(e.speaker, e.gender) for e in got.entries] == [("1001", "female"), ("1200", "male")]
    (tmp_path / "VideoDemographics.csv").write_text("id,sex\n1001,Male\n")
    with pytest.raises(CorpusError, match="needs the columns ActorID and Sex"):
        adapter.entries(Source(tmp_path), members)


@pytest.mark.parametrize("fmt", ["emodb", "crema-d", "tess", "savee"])
def test_each_synthetic_release_is_laid_out_as_the_real_one_and_detected(fmt: str, release) -> None:
    speakers, per_speaker = RELEASE_SIZES[fmt]
    src = release(fmt, speakers, per_speaker)
    adapter = get_format(fmt)
    wavs = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.wav"))
    assert len(wavs) == speakers * per_speaker
    # Every file name parses with the adapter, the labels stay balanced, the rate is the
    # release's own.
    labels = [_entry(fmt, w).label for w in wavs]
    assert sorted(set(labels)) == sorted(adapter.labels)
    assert sf.info(src / wavs[0]).samplerate == adapter.release_rate
    members = [p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()]
    assert detect(members, str(src)) == fmt
    layout = {
        "emodb": r"^wav/\d\d[ab]\d\d[WLEAFTN]a\.wav$",
        "crema-d": r"^AudioWAV/10\d\d_[A-Z]{3}_[A-Z]{3}_(XX|HI)\.wav$",
        "tess": r"^(OAF|YAF)_[A-Za-z_]+/(OAF|YAF)_[a-z]+_[a-z]+\.wav$",
        "savee": r"^AudioData/(DC|JE|JK|KL)/(a|d|f|h|n|sa|su)\d\d\.wav$",
    }[fmt]
    assert all(re.match(layout, w) for w in wavs), wavs


def test_detection_refuses_unknown_and_mixed_names() -> None:
    with pytest.raises(CorpusError, match="no file name follows a known corpus"):
        detect(["notes.txt", "x/clip.wav"], "src")
    with pytest.raises(CorpusError, match=r"several corpora \(ravdess \(1 files\), emodb"):
        detect(["03-01-01-01-01-01-01.wav", "wav/03a01Fa.wav"], "src")


def test_the_cli_help_lists_every_registered_format() -> None:
    assert FORMATS_HELP.split(", ") == list(FORMATS)
