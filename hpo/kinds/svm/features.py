"""Utterance-level features, computed once per corpus, feature set and settings, cached.

Three sets: ``librosa`` (below), and openSMILE's ``egemaps`` (eGeMAPSv02 functionals, 88)
and ``compare`` (ComParE_2016 functionals, 6,373), the field's standard sets, from the
``opensmile`` package (its extractor and configs ship in the wheel). The cache key is the
manifest hash plus the set and its settings plus ``FEATURE_VERSION`` (and openSMILE's
version), so no trial recomputes features and a changed corpus or setting never reads stale
ones.

A fused set (``"egemaps+compare"``) is its sets' features side by side, in the order named:
each set is cached once, alone, and shared by every combination that includes it.

Non-finite values (openSMILE gives NaN for a few functionals on clips with too few voiced
frames) are kept here, as extracted: the pipeline's first steps replace them by the median
of the fold's training clips (``pipeline.preprocessing``), so no validation clip informs
the value. The SVC never sees one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from hpo.corpus.audio import load_clip
from hpo.corpus.manifest import Corpus
from hpo.kinds.speaker_norm import SpeakerNorm, corpus_groups, standardise, stats_groups
from hpo.kinds.svm.config import FeatureSettings
from hpo.util.io import atomic_path
from hpo.util.parallel import pmap

FEATURE_VERSION = 1  # bump when the computation below changes
# Settings applied after the cache (hpo.kinds.speaker_norm): not part of its key.
NORM_KEYS = ("speaker_norm", "enrolment", "enrolment_clips")
OPENSMILE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
_SMILE: dict[str, object] = {}  # one extractor per set and process


def _stats(frames: np.ndarray, stats: list[str]) -> list[np.ndarray]:
    """Statistics over time of a (dims, frames) matrix."""
    fns = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max, "median": np.median}
    return [fns[s](frames, axis=1) for s in stats]


def clip_features(y: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """One clip (16 kHz float32) → one feature vector."""
    import librosa

    y = _trimmed(y, s)
    power = np.abs(librosa.stft(y, n_fft=s.n_fft, hop_length=s.hop_length)) ** 2
    mag = np.sqrt(power)
    rms = librosa.feature.rms(S=mag, frame_length=s.n_fft)
    parts = _cepstral_parts(power, s) + _spectral_parts(mag, s)
    if s.energy:
        parts += _energy_parts(y, rms, s)
    if s.pitch:
        parts.append(_pitch_part(y, rms, s))
    parts.append(np.array([y.size / s.sample_rate]))  # voiced length after trimming: tempo
    return np.concatenate([np.ravel(p) for p in parts]).astype(np.float32)


def _trimmed(y: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """Leading and trailing silence cut (unless that leaves less than one frame), then
    padded to at least one frame."""
    import librosa

    if s.trim_db is not None:
        trimmed, _ = librosa.effects.trim(
            y, top_db=s.trim_db, frame_length=s.n_fft, hop_length=s.hop_length
        )
        if trimmed.size >= s.n_fft:
            y = trimmed
    if y.size < s.n_fft:
        y = np.pad(y, (0, s.n_fft - y.size))
    return y


def _cepstral_parts(power: np.ndarray, s: FeatureSettings) -> list[np.ndarray]:
    """Statistics of the MFCCs (and their deltas) and of the log-mel spectrogram."""
    import librosa

    mel = librosa.feature.melspectrogram(S=power, sr=s.sample_rate, n_mels=s.n_mels)
    log_mel = librosa.power_to_db(mel)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=s.n_mfcc)
    blocks = [mfcc]
    if s.deltas:
        # The widest odd window up to 9 that the clip's frames allow; none below 3.
        width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2)) if mfcc.shape[1] >= 3 else 0
        if width >= 3:
            blocks += [
                librosa.feature.delta(mfcc, width=width),
                librosa.feature.delta(mfcc, order=2, width=width),
            ]
        else:
            blocks += [np.zeros_like(mfcc), np.zeros_like(mfcc)]
    return [p for b in [*blocks, log_mel] for p in _stats(b, s.stats)]


def _spectral_parts(mag: np.ndarray, s: FeatureSettings) -> list[np.ndarray]:
    """Statistics of spectral contrast and of the spectrum's shape, as configured."""
    import librosa

    sr = s.sample_rate
    parts: list[np.ndarray] = []
    if s.spectral_contrast:
        parts += _stats(
            librosa.feature.spectral_contrast(S=mag, sr=sr, fmin=100.0, n_bands=6), s.stats
        )
    if s.spectral_shape:
        shape = np.vstack(
            [
                librosa.feature.spectral_centroid(S=mag, sr=sr),
                librosa.feature.spectral_bandwidth(S=mag, sr=sr),
                librosa.feature.spectral_rolloff(S=mag, sr=sr),
                librosa.feature.spectral_flatness(S=mag),
            ]
        )
        parts += _stats(shape, s.stats)
    return parts


def _energy_parts(y: np.ndarray, rms: np.ndarray, s: FeatureSettings) -> list[np.ndarray]:
    """Statistics of log energy and zero-crossing rate, and the energy's peak and range."""
    import librosa

    zcr = librosa.feature.zero_crossing_rate(y, frame_length=s.n_fft, hop_length=s.hop_length)
    log_rms = np.log(rms + 1e-8)
    parts = _stats(np.vstack([log_rms, zcr[:, : log_rms.shape[1]]]), s.stats)
    return [*parts, np.array([log_rms.max(), np.ptp(log_rms)])]


def _pitch_part(y: np.ndarray, rms: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """Log-F0 level, spread, range, movement, and the share of loud frames."""
    import librosa

    f0 = librosa.yin(
        y, fmin=s.fmin, fmax=s.fmax, sr=s.sample_rate, frame_length=2048, hop_length=s.hop_length
    )
    # YIN gives a value for every frame; keep the loud ones as a voicing proxy.
    n = min(f0.size, rms.shape[1])
    loud = rms[0, :n] > 0.5 * np.median(rms[0, :n])
    lf0 = np.log2(f0[:n][loud]) if loud.any() else np.log2(f0[:n])
    dlf0 = np.diff(lf0) if lf0.size > 1 else np.zeros(1)
    return np.array(
        [
            lf0.mean(),
            lf0.std(),
            np.percentile(lf0, 5),
            np.percentile(lf0, 95),
            np.abs(dlf0).mean(),
            loud.mean(),
        ]
    )


def smile_features(y: np.ndarray, feature_set: str) -> np.ndarray:
    """openSMILE functionals of one 16 kHz clip."""
    if feature_set not in _SMILE:
        import opensmile

        _SMILE[feature_set] = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, OPENSMILE_SETS[feature_set]),
            feature_level=opensmile.FeatureLevel.Functionals,
        )
    smile = _SMILE[feature_set]
    return smile.process_signal(y, 16_000).to_numpy(dtype=np.float32)[0]  # type: ignore[attr-defined]


def features_of(y: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """One clip (16 kHz float32) → the feature vector of set ``s.set`` (a fused set's
    vectors concatenated)."""
    if len(s.sets) > 1:
        return np.concatenate([features_of(y, s.part(name)) for name in s.sets])
    if s.set == "librosa":
        return clip_features(y, s)
    return smile_features(y, s.set)


def _one(args: tuple[str, FeatureSettings]) -> np.ndarray:
    path, s = args
    return features_of(load_clip(path), s)


def cache_key(corpus: Corpus, s: FeatureSettings) -> str:
    # Speaker normalisation is applied after the cache: it does not change what is stored.
    settings = {k: v for k, v in dataclasses.asdict(s).items() if k not in NORM_KEYS}
    if s.set != "librosa":  # librosa's settings do not touch openSMILE's features
        from importlib.metadata import version

        settings = {"set": s.set, "opensmile": version("opensmile")}
    blob = json.dumps([FEATURE_VERSION, corpus.manifest_hash, settings], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(corpus: Corpus, s: FeatureSettings) -> Path:
    return corpus.root / "cache" / "features" / f"{s.set}-{cache_key(corpus, s)}.npy"


def load_features(corpus: Corpus, s: FeatureSettings, jobs: int | None = None) -> np.ndarray:
    """Features of every clip of ``corpus`` in manifest order, from cache when possible;
    non-finite values as extracted (the pipeline imputes them per fold). A fused set's
    sets side by side."""
    if len(s.sets) > 1:
        return np.hstack([load_features(corpus, s.part(name), jobs) for name in s.sets])
    path = cache_path(corpus, s)
    if path.is_file():
        try:
            X = np.load(path)
            if X.shape[0] == len(corpus.clips):
                return X
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed, then replaced atomically
    tasks = [(str(corpus.clip_path(c)), s) for c in corpus.clips]
    # Compile librosa's numba kernels here, once, before the workers start: workers that all
    # compile and write numba's on-disk cache at the same moment have left it corrupt.
    noise = np.random.default_rng(0).uniform(-0.1, 0.1, s.sample_rate).astype(np.float32)
    features_of(noise, s)
    rows = list(pmap(_one, tasks, f"{s.set} features", jobs, chunksize=16))
    X = np.stack(rows)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, X)  # as extracted: imputation is fitted per fold, in the pipeline
    return X


def set_widths(corpus: Corpus, s: FeatureSettings) -> list[tuple[str, int]]:
    """(set, number of features) of each set ``s`` fuses, in order: where a fused
    pipeline's blocks lie in the concatenated features."""
    return [(name, load_features(corpus, s.part(name)).shape[1]) for name in s.sets]


def speaker_normalize(X: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Z-score every feature within each speaker's own clips, all of them (transductive;
    no labels involved). Float64 out; see ``hpo.kinds.speaker_norm.standardise``."""
    return standardise(X, stats_groups(SpeakerNorm("transductive"), speakers))


def normalised(X: np.ndarray, corpus: Corpus, s: FeatureSettings) -> np.ndarray:
    """``X`` (every clip of ``corpus``) normalised per speaker as ``s`` says."""
    if not s.norm.on:
        return X
    return standardise(X, corpus_groups(s.norm, corpus), s.norm.scales)


def corpus_features(corpus: Corpus, s: FeatureSettings, jobs: int | None = None) -> np.ndarray:
    """Features of every clip, speaker-normalised when the settings ask for it."""
    return normalised(load_features(corpus, s, jobs), corpus, s)
