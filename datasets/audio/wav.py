"""Reading PCM WAV files with the standard library's ``wave`` module (no torchaudio, no soundfile)."""

from __future__ import annotations

import os
import wave

import numpy as np

from hubkit.errors import DatasetError

__all__ = ["read_wav"]


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """``(waveform (channels, frames) float32 in [-1, 1), sample_rate)`` from a PCM WAV file.

    Scaling is torchaudio's default (``normalize=True``): 8-bit unsigned ``(x - 128) / 128``, 16-bit
    ``x / 2**15``, 24-bit and 32-bit ``x / 2**31`` after widening to int32.
    """
    try:
        with wave.open(os.fspath(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
    except (wave.Error, EOFError) as exc:
        raise DatasetError(f"{path}: not a PCM WAV file the wave module reads ({exc})") from exc
    if len(raw) != frames * channels * width:
        raise DatasetError(
            f"{path}: header announces {frames} frames but holds {len(raw) // max(channels * width, 1)}; "
            "the file is truncated"
        )
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        widened = (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)  # sign comes from the top byte
        samples = widened.astype(np.float32) / 2147483648.0
    elif width == 4:
        samples = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise DatasetError(f"{path}: unsupported sample width of {width} bytes")
    return np.ascontiguousarray(samples.reshape(-1, channels).T), rate
