from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from hpo.corpus.formats.ravdess import ClipId, parse_stem
from hpo.corpus.synth import synthesize
from tests.helpers import synth_clip


def test_layout_rate_and_names_match_the_release(synth_src: Path) -> None:
    actors = sorted(p.name for p in synth_src.iterdir() if p.is_dir())
    assert actors == [f"Actor_{a:02d}" for a in range(1, 25)]
    for wav in (synth_src / "Actor_07").glob("*.wav"):
        cid = parse_stem(wav.stem)
        assert cid.actor == 7 and cid.modality == 3 and cid.channel == 1
        info = sf.info(wav)
        assert info.samplerate == 48_000 and info.channels == 1
        assert 2.0 < info.duration < 6.0


def test_fewer_clips_per_actor_keep_emotions_balanced(synth_src: Path) -> None:
    emos = Counter(parse_stem(p.stem).emotion for p in (synth_src / "Actor_01").glob("*.wav"))
    assert emos == {e: 2 for e in range(1, 9)}


def test_same_seed_same_audio_and_emotions_differ() -> None:
    a = synth_clip(ClipId(3, 1, 5, 2, 1, 1, 3), seed=0)
    b = synth_clip(ClipId(3, 1, 5, 2, 1, 1, 3), seed=0)
    assert np.array_equal(a, b)
    sad = synth_clip(ClipId(3, 1, 4, 2, 1, 1, 3), seed=0)
    # Angry (strong) is louder than sad (strong) for the same actor.
    assert np.sqrt(np.mean(a**2)) > np.sqrt(np.mean(sad**2))


def test_marker_says_synthetic(tmp_path: Path) -> None:
    r = synthesize(tmp_path / "s", actors=2, clips_per_actor=3, jobs=1)
    assert r.clips == 6
    assert (tmp_path / "s" / "hpo-synthetic.json").read_text().count('"synthetic": true') == 1
