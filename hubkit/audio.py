"""Audio I/O and resampling without torchaudio: ``read_wav`` (the standard library's ``wave`` module) and
``resample`` (band-limited sinc interpolation with torchaudio's defaults).

``resample`` follows ``torchaudio.functional.resample`` (``resampling_method="sinc_interp_hann"``,
``lowpass_filter_width=6``, ``rolloff=0.99``): the ratio is reduced by the gcd of the two rates; each of the
``new`` output phases gets its own windowed-sinc kernel over ``2 * width + orig`` input samples, and the kernels
slide over the zero-padded input with a stride of ``orig`` samples. Output length is ``ceil(new * samples / orig)``.

Nothing here is imported by ``import hubkit``; the audio zoo and the audio datasets use it.
"""

from __future__ import annotations

import math
import os
import wave

import numpy as np

from hubkit.errors import ArgumentError, AudioFileError, ShapeError

__all__ = ["read_wav", "resample", "sinc_resample_kernel"]


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """``(waveform (channels, frames) float32 in [-1, 1), sample_rate)`` from a PCM WAV file.

    Scaling is torchaudio's default (``normalize=True``): 8-bit unsigned ``(x - 128) / 128``, 16-bit
    ``x / 2**15``, 24-bit and 32-bit ``x / 2**31`` after widening to int32.

    Raises:
        AudioFileError: the file is missing, is not PCM WAV, has an unsupported sample width, or is truncated.
    """
    try:
        with wave.open(os.fspath(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
    except FileNotFoundError:
        raise AudioFileError(f"no audio file at {path}") from None
    except (wave.Error, EOFError) as exc:
        raise AudioFileError(f"{path}: not a PCM WAV file the wave module reads ({exc}); convert it to PCM WAV "
                             f"(e.g. ffmpeg -i in.mp3 out.wav)") from exc  # fmt: skip
    if len(raw) != frames * channels * width:
        raise AudioFileError(
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
        raise AudioFileError(f"{path}: unsupported sample width of {width} bytes; use 8, 16, 24 or 32-bit PCM")
    return np.ascontiguousarray(samples.reshape(-1, channels).T), rate


def sinc_resample_kernel(
    orig_freq: int, new_freq: int, lowpass_filter_width: int = 6, rolloff: float = 0.99
) -> tuple[np.ndarray, int]:
    """``(kernels (new, 2*width + orig), width)`` for rates already reduced by their gcd (float64)."""
    base_freq = min(orig_freq, new_freq) * rolloff
    width = math.ceil(lowpass_filter_width * orig_freq / base_freq)
    idx = np.arange(-width, width + orig_freq, dtype=np.float64)[None, :] / orig_freq
    t = (np.arange(0, -new_freq, -1, dtype=np.float64)[:, None] / new_freq + idx) * base_freq
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernels = np.where(t == 0, 1.0, np.sin(t) / t)
    return kernels * window * (base_freq / orig_freq), width


def resample(
    waveform: np.ndarray, orig_freq: int, new_freq: int, *, lowpass_filter_width: int = 6, rolloff: float = 0.99
) -> np.ndarray:
    """Resample ``waveform`` (samples,) or (..., samples) from ``orig_freq`` to ``new_freq`` Hz (float32 out
    for float32 in, float64 otherwise)."""
    for name, rate in (("orig_freq", orig_freq), ("new_freq", new_freq)):
        if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
            raise ArgumentError(f"resample: {name} must be a positive whole number of Hz, got {rate!r}")
    if lowpass_filter_width < 1 or not 0 < rolloff <= 1:
        raise ArgumentError("resample: lowpass_filter_width must be >= 1 and rolloff in (0, 1]")
    x = np.asarray(waveform)
    if x.ndim < 1:
        raise ShapeError(f"resample: expected a waveform (..., samples), got a scalar of shape {x.shape}")
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    if orig_freq == new_freq:
        return x.astype(dtype, copy=True)
    g = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // g, new_freq // g
    kernels, width = sinc_resample_kernel(orig, new, lowpass_filter_width, rolloff)
    lead, length = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, length).astype(np.float64)
    padded = np.pad(flat, ((0, 0), (width, width + orig)))
    frames = (padded.shape[1] - kernels.shape[1]) // orig + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernels.shape[1], axis=1)[:, ::orig][:, :frames]
    out = np.einsum("bfk,pk->bfp", windows, kernels, optimize=True).reshape(flat.shape[0], -1)
    target = math.ceil(new * length / orig)
    return out[:, :target].reshape(*lead, -1).astype(dtype)
