"""``hpo data synth``: a synthetic corpus in a release's exact layout (RAVDESS, EmoDB,
CREMA-D, TESS, SAVEE: file names, folders, sample rate and side files as released).

Not speech: a glottal-pulse source through per-syllable formant resonators, with silence
around it like the real recordings. Emotion is carried by prosody-like cues (pitch level and
range, tempo, energy, spectral tilt, breathiness) that every actor realises differently, and
each clip adds its own variation, so a speaker-independent classifier learns it well above
chance but not perfectly. Nothing trained on it says anything about real emotional speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from hpo import __version__
from hpo.corpus.formats import get_format
from hpo.corpus.formats._base import SynthClip
from hpo.corpus.source import SYNTH_MARKER
from hpo.errors import CorpusError
from hpo.util.io import atomic_path, write_json_atomic, write_text_atomic
from hpo.util.parallel import pmap

# Emotion cues relative to an actor's neutral voice:
# (pitch factor, pitch range in semitones, tempo factor, energy dB, tilt, breathiness)
# tilt > 0 is a brighter (flatter) spectrum, < 0 a darker one. Keyed by RAVDESS's emotion
# numbers (so its synthetic corpus stays as it was); 0 is boredom (EmoDB), RAVDESS has none.
CUES: dict[int, tuple[float, float, float, float, float, float]] = {
    0: (0.93, 0.8, 0.82, -4.0, -0.4, 0.08),  # bored
    1: (1.00, 2.0, 1.00, 0.0, 0.0, 0.05),  # neutral
    2: (0.95, 1.5, 0.88, -3.0, -0.3, 0.10),  # calm
    3: (1.18, 5.0, 1.10, 3.0, 0.3, 0.05),  # happy
    4: (0.90, 1.0, 0.80, -5.0, -0.5, 0.15),  # sad
    5: (1.12, 4.0, 1.15, 7.0, 0.7, 0.08),  # angry
    6: (1.30, 3.5, 1.22, 1.0, 0.0, 0.25),  # fearful
    7: (0.96, 2.5, 0.85, 2.0, 0.2, 0.12),  # disgust
    8: (1.35, 7.0, 1.00, 4.0, 0.4, 0.06),  # surprised
}
CUE_OF = {
    "bored": 0,
    "neutral": 1,
    "calm": 2,
    "happy": 3,
    "sad": 4,
    "angry": 5,
    "fearful": 6,
    "disgust": 7,
    "surprised": 8,
}
# Vowel formants (F1, F2, F3) in Hz for the six syllables of each statement.
_STATEMENTS = {
    1: [
        (300, 2300, 3000),
        (700, 1200, 2500),
        (500, 1500, 2500),
        (400, 2000, 2600),
        (600, 1000, 2400),
        (350, 900, 2300),
    ],  # "kids are talking by the door"
    2: [
        (600, 1000, 2400),
        (700, 1200, 2500),
        (400, 2000, 2600),
        (350, 2200, 2900),
        (600, 1000, 2400),
        (350, 900, 2300),
    ],  # "dogs are sitting by the door"
}


@dataclass(frozen=True)
class SynthReport:
    out: Path
    clips: int
    actors: int
    sample_rate: int
    format: str = "ravdess"


def _actor_voice(actor: int, seed: int, male: bool) -> dict:
    rng = np.random.default_rng([seed, actor])
    return {
        "f0": rng.uniform(95, 140) if male else rng.uniform(170, 240),
        "formant_scale": (1.0 if male else 1.15) * rng.uniform(0.94, 1.06),
        "rate": rng.uniform(0.88, 1.12),
        "tilt": rng.normal(0, 0.25),
        "loudness": rng.normal(0, 2.5),
        # How strongly, and with what personal twist, this actor expresses each cue.
        "expressiveness": rng.uniform(0.5, 1.2),
        "twist": rng.normal(0, 0.35, size=(9, 6)),
    }


def _resonator(x: np.ndarray, freq: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1 - r], a, x)


def render(clip: SynthClip, seed: int, sr: int) -> np.ndarray:
    """Render one synthetic clip as float32 mono at ``sr``: the same seed, the same audio."""
    voice = _actor_voice(clip.voice, seed, clip.male)
    emotion = CUE_OF[clip.label]
    rng = np.random.default_rng(
        [seed, clip.voice, emotion, clip.intensity, clip.statement, clip.take, 7]
    )
    base = np.array(CUES[1])
    cue = np.array(CUES[emotion])
    strength = voice["expressiveness"] * (1.5 if clip.intensity == 2 else 1.0)
    # Deviation from neutral, scaled by the actor's expressiveness, bent by the actor's own
    # habits and by this clip's chance: the speaker-dependent part a classifier must see past.
    dev = (cue - base) * strength
    dev = dev + voice["twist"][emotion] * np.array([0.06, 1.2, 0.06, 1.8, 0.2, 0.04])
    dev = dev + rng.normal(0, 1, 6) * np.array([0.05, 1.0, 0.05, 1.5, 0.15, 0.03])
    f0_fac, f0_range, tempo, gain_db, tilt, breath = base + dev
    f0_fac, tempo = max(f0_fac, 0.6), max(tempo, 0.6)
    f0_range, breath = max(f0_range, 0.3), float(np.clip(breath, 0.0, 0.6))
    return _voice(rng, voice, clip.statement, sr, (f0_fac, f0_range, tempo, gain_db, tilt, breath))


def _voice(
    rng: np.random.Generator, voice: dict, statement: int, sr: int, cues: tuple[float, ...]
) -> np.ndarray:
    """The statement's syllables spoken with the clip's cues (pitch, tempo, energy, ...)."""
    f0_fac, f0_range, tempo, gain_db, tilt, breath = cues
    syll = [dict(zip(("f1", "f2", "f3"), f, strict=True)) for f in _STATEMENTS[statement]]
    syll_dur = 0.27 / (tempo * voice["rate"])
    lead = rng.uniform(0.35, 0.75)
    tail = rng.uniform(0.6, 1.1)
    n = int((lead + syll_dur * len(syll) * 1.1 + tail) * sr)
    t = np.arange(n) / sr

    # Pitch: declining line with a smooth accent on a few syllables, plus jitter.
    f0 = voice["f0"] * f0_fac
    knots = rng.uniform(-1, 1, len(syll) + 2)
    accent = np.interp(t, np.linspace(lead, lead + syll_dur * len(syll), len(knots)), knots)
    decl = -1.5 * (t - lead) / max(syll_dur * len(syll), 1e-3)
    semis = f0_range * accent + decl + rng.normal(0, 0.15, n).cumsum() / np.sqrt(sr) * 3
    f0_t = f0 * 2.0 ** (semis / 12)
    phase = np.cumsum(f0_t / sr)
    source = 2.0 * (phase % 1.0) - 1.0  # sawtooth: harmonics falling at 6 dB/octave
    source += breath * rng.normal(0, 1, n)

    out = np.zeros(n)
    fs = voice["formant_scale"]
    for i, s in enumerate(syll):
        start = int((lead + i * syll_dur * 1.1) * sr)
        length = int(syll_dur * sr)
        seg = source[start : start + length]
        if seg.size == 0:
            continue
        y = sum(
            _resonator(seg, s[k] * fs * rng.uniform(0.97, 1.03), bw, sr) * g
            for k, bw, g in (("f1", 90, 1.0), ("f2", 110, 0.6), ("f3", 150, 0.3))
        )
        env = np.sin(np.linspace(0, np.pi, seg.size)) ** 0.6
        # A short noise burst: the syllable's onset consonant.
        burst = np.zeros(seg.size)
        nb = min(int(0.03 * sr), seg.size)
        burst[:nb] = rng.normal(0, 0.3, nb) * np.linspace(1, 0, nb)
        out[start : start + seg.size] += y * env + burst

    # Spectral tilt: one-pole emphasis (bright) or smoothing (dark).
    total_tilt = float(np.clip(tilt + voice["tilt"], -0.9, 0.9))
    if total_tilt > 0:
        out = lfilter([1.0, -0.9 * total_tilt], [1.0], out)
    else:
        out = lfilter([1.0 + 0.9 * total_tilt], [1.0, 0.9 * total_tilt], out)
    rms = np.sqrt(np.mean(out[out != 0] ** 2)) if np.any(out) else 1.0
    gain = 10 ** ((gain_db + voice["loudness"] - 20) / 20) / max(rms, 1e-9)
    out = out * gain + rng.normal(0, 10 ** (-62 / 20), n)  # a room's noise floor, never 0
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def _render(args: tuple[str, SynthClip, int, int]) -> None:
    out, clip, seed, sr = args
    with atomic_path(Path(out) / clip.path, durable=False) as tmp:  # made again from the seed
        sf.write(tmp, render(clip, seed, sr), sr, subtype="PCM_16", format="WAV")


def synthesize(
    out: str | Path,
    actors: int | None = None,
    clips_per_actor: int | None = None,
    seed: int = 0,
    sample_rate: int | None = None,
    jobs: int | None = None,
    fmt: str = "ravdess",
) -> SynthReport:
    """Write a synthetic corpus laid out as the ``fmt`` release (RAVDESS:
    ``out/Actor_XX/MM-VV-EE-II-SS-RR-AA.wav``).

    Args:
        out: directory to write (an ``hpo-synthetic.json`` marker says what it is).
        actors: number of speakers (default and most: the release's; RAVDESS 24).
        clips_per_actor: clips per speaker, labels kept balanced (RAVDESS: 1..60, default 60).
        seed: the same seed writes the same audio.
        sample_rate: default the release's (RAVDESS 48 kHz).
        jobs: worker processes (default: all cores).
        fmt: which release's layout (``hpo.corpus.formats``; not ``csv``).
    """
    adapter = get_format(fmt)
    if fmt == "csv":
        raise CorpusError("--format csv: a CSV corpus is your own files; synth writes releases")
    actors = adapter.max_speakers if actors is None else actors
    per = adapter.default_clips if clips_per_actor is None else clips_per_actor
    rate = sample_rate or adapter.release_rate
    if not 1 <= actors <= adapter.max_speakers:
        raise CorpusError(f"--actors {actors}: must be between 1 and {adapter.max_speakers}")
    if not 1 <= per <= adapter.max_clips:
        raise CorpusError(f"--clips-per-actor {per}: must be between 1 and {adapter.max_clips}")
    out = Path(out)
    plan = adapter.synth_plan(actors, per)
    tasks = [(str(out), c, seed, rate) for c in plan]
    for _ in pmap(_render, tasks, "synthesizing clips", jobs, chunksize=16):
        pass
    for rel, text in adapter.synth_files(actors).items():
        write_text_atomic(out / rel, text)
    write_json_atomic(
        out / SYNTH_MARKER,
        {
            "synthetic": True,
            "note": f"Synthetic stand-in for {adapter.title} generated by hpo; not real speech.",
            "format": fmt,
            "generator": f"hpo {__version__}",
            "seed": seed,
            "actors": actors,
            "clips_per_actor": per,
            "sample_rate": rate,
        },
    )
    return SynthReport(out=out, clips=len(plan), actors=actors, sample_rate=rate, format=fmt)
