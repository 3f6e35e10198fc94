"""Decoding and checking source clips; soundfile only (no FFmpeg / torchcodec needed)."""

from __future__ import annotations

import io
import re
import struct

import numpy as np
import soundfile as sf

TARGET_SR = 16_000


class BadAudio(ValueError):
    """A clip that cannot be used; the message is the reason listed in the summary."""


def riff_truncation(data: bytes) -> str | None:
    """Say why a RIFF/WAVE file is truncated, or None when its data chunk is complete.

    libsndfile silently reads what is there of a cut-off file, so a clip truncated by an
    interrupted download would otherwise pass as a short clip.
    """
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        return None  # not RIFF/WAVE: leave the verdict to the decoder
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if chunk_id == b"data":
            have = len(data) - pos - 8
            # Some writers leave a few bytes of slack or 0xFFFFFFFF (length unknown) in the
            # header; a cut-off download misses far more than that.
            missing = size - have
            if data[:4] == b"RIFF" and size != 0xFFFFFFFF and missing > max(4096, size // 100):
                return f"truncated: data chunk declares {size} bytes, file has {have}"
            return None
        pos += 8 + size + (size & 1)
    return "truncated: no data chunk"


def decode(data: bytes) -> tuple[np.ndarray, int, int]:
    """Decode wav bytes to float32 mono at the source rate.

    Returns:
        (samples, sample_rate, source_channels)
    """
    if not data:
        raise BadAudio("empty file")
    if data.startswith(b"version https://git-lfs"):
        # CREMA-D's repository keeps its audio in git-lfs: a plain clone has these instead.
        raise BadAudio("a git-lfs pointer, not audio: fetch the files with 'git lfs pull'")
    why = riff_truncation(data)
    if why:
        raise BadAudio(why)
    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's messages vary by version; keep its first line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        msg = re.sub(r"^Error opening <[^>]*>: ", "", msg)
        raise BadAudio(f"unreadable audio: {msg}") from None
    channels = y.shape[1]
    # Some releases' clips are stereo (RAVDESS has a few); a plain mean keeps both channels.
    return y.mean(axis=1), int(sr), channels


def to_16k_mono(data: bytes, min_seconds: float = 0.25) -> tuple[np.ndarray, int]:
    """Decode, downmix and resample a clip to 16 kHz; reject empty, short and silent clips.

    Returns:
        (samples, source_channels)
    """
    y, channels, _ = decode_16k_mono(data, min_seconds)
    return y, channels


def decode_16k_mono(data: bytes, min_seconds: float = 0.25) -> tuple[np.ndarray, int, int]:
    """``to_16k_mono`` that also gives the source's sample rate: (samples, channels, rate)."""
    y, sr, channels = decode(data)
    if y.size == 0:
        raise BadAudio("no audio frames")
    if y.size / sr < min_seconds:
        raise BadAudio(f"too short: {y.size / sr:.3f} s (minimum {min_seconds} s)")
    if not np.all(np.isfinite(y)):
        raise BadAudio("samples are NaN or infinite")
    if float(np.max(np.abs(y))) < 1e-4:
        raise BadAudio("silent: peak amplitude below -80 dBFS")
    if sr != TARGET_SR:
        import soxr  # librosa's own resampler backend; imported here to keep start-up light

        y = soxr.resample(y, sr, TARGET_SR, quality="HQ").astype(np.float32)
    return np.clip(y, -1.0, 1.0), channels, int(sr)


def load_clip(path: str) -> np.ndarray:
    """Load a prepared 16 kHz mono clip as float32.

    Raises:
        CorpusError: the clip is missing or damaged (the corpus changed after preparation).
    """
    from hpo.errors import CorpusError

    again = "run 'hpo data prepare' again"
    try:
        y, sr = sf.read(path, dtype="float32")
    except Exception as e:  # libsndfile's error types and messages vary by version
        first = (str(e).splitlines() or [type(e).__name__])[0]
        first = re.sub(r"^Error opening [^:]*: ", "", first)
        raise CorpusError(f"{path}: prepared clip cannot be read ({first}); {again}") from None
    if sr != TARGET_SR or y.ndim != 1 or y.size == 0:
        raise CorpusError(
            f"{path}: prepared clip is not 16 kHz mono audio ({sr} Hz, shape {y.shape}); {again}"
        )
    if not np.all(np.isfinite(y)):
        raise CorpusError(f"{path}: prepared clip holds NaN or infinite samples; {again}")
    return y
