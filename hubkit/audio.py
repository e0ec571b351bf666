"""Audio I/O and resampling without torchaudio: ``read_wav`` (a RIFF/WAVE reader for the sample formats real
tools write) and ``resample`` (band-limited sinc interpolation with torchaudio's defaults).

``resample`` follows ``torchaudio.functional.resample`` (``resampling_method="sinc_interp_hann"``,
``lowpass_filter_width=6``, ``rolloff=0.99``): the ratio is reduced by the gcd of the two rates; each of the
``new`` output phases gets its own windowed-sinc kernel over ``2 * width + orig`` input samples, and the kernels
slide over the zero-padded input with a stride of ``orig`` samples. Output length is ``ceil(new * samples / orig)``.

Nothing here is imported by ``import hubkit``; the audio zoo and the audio datasets use it.
"""

from __future__ import annotations

import math
import os
import struct
from typing import BinaryIO

import numpy as np

from hubkit.errors import ArgumentError, AudioFileError, ShapeError

__all__ = ["read_wav", "resample", "sinc_resample_kernel"]


# WAVE format tags (Microsoft's mmreg.h). PCM and IEEE float are read; the extensible header wraps either
# one, naming it in the first two bytes of a subformat GUID whose other 14 bytes are always these.
_PCM, _IEEE_FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_CODECS = {0x0002: "Microsoft ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0055: "MP3"}


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """``(waveform (channels, frames) float32, sample_rate)`` from a WAV file.

    Reads integer PCM (8, 16, 24 or 32-bit) and IEEE float (32 or 64-bit) samples, with the plain header or
    WAVE_FORMAT_EXTENSIBLE (what libsndfile, ffmpeg and most editors write for more than 16 bits or two
    channels). Scaling is torchaudio's default (``normalize=True``): 8-bit unsigned ``(x - 128) / 128``,
    16-bit ``x / 2**15``, 24-bit and 32-bit ``x / 2**31`` after widening to int32; float samples as stored.

    Raises:
        AudioFileError: the file is missing, is not a RIFF/WAVE file, holds another codec (mu-law, ADPCM,
            ...) or sample width, or is truncated.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            tag, channels, rate, width, offset, length = _wav_layout(f, path, size)
            frames = length // (channels * width)
            f.seek(offset)
            raw = f.read(frames * channels * width)
    except FileNotFoundError:
        raise AudioFileError(f"no audio file at {path}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise AudioFileError(f"cannot read the audio file {path}: {exc.strerror}") from None
    if tag == _IEEE_FLOAT:
        samples = np.frombuffer(raw, "<f4" if width == 4 else "<f8").astype(np.float32)
    elif width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        widened = (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)  # sign comes from the top byte
        samples = widened.astype(np.float32) / 2147483648.0
    else:
        samples = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    return np.ascontiguousarray(samples.reshape(-1, channels).T), rate


def _wav_layout(f: BinaryIO, path: str | os.PathLike[str], size: int) -> tuple[int, int, int, int, int, int]:
    """``(format tag: PCM or IEEE float, channels, rate, bytes per sample, data offset, data length)`` of an open
    WAV file, from its ``fmt `` and ``data`` chunks; AudioFileError for anything it cannot read."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioFileError(f"{path}: not a WAV file (no RIFF/WAVE header); convert it to PCM WAV "
                             "(e.g. ffmpeg -i in.mp3 out.wav)")
    fmt = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            raise AudioFileError(f"{path}: the WAV file has no {'data' if fmt else 'fmt'} chunk; it is truncated")
        kind, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        start = f.tell()
        if kind == b"fmt ":
            fmt = f.read(min(length, 64))
        elif kind == b"data":
            break
        f.seek(start + length + (length & 1))  # chunks are padded to an even length
    if fmt is None or len(fmt) < 16:
        raise AudioFileError(f"{path}: the WAV file's data comes before a complete fmt chunk; it is damaged")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 40 and fmt[26:40] == _GUID_TAIL:
        tag = struct.unpack("<H", fmt[24:26])[0]
    if tag not in (_PCM, _IEEE_FLOAT):
        name = _CODECS.get(tag, "extensible, unknown subformat" if tag == _EXTENSIBLE else "a compressed codec")
        raise AudioFileError(f"{path}: WAV sample format {tag} ({name}) is not read here, only integer PCM (format 1) "
                             "and IEEE float (format 3); convert it, e.g. ffmpeg -i in.wav -c:a pcm_s16le out.wav")
    widths = (4, 8) if tag == _IEEE_FLOAT else (1, 2, 3, 4)
    if bits % 8 or bits // 8 not in widths or channels < 1 or rate < 1:
        kind = "IEEE float" if tag == _IEEE_FLOAT else "PCM"
        raise AudioFileError(f"{path}: unsupported WAV layout: {kind} with {bits}-bit samples, {channels} channels, "
                             f"{rate} Hz; use 8, 16, 24 or 32-bit PCM, or 32 or 64-bit float")
    if start + length > size:
        frames = (size - start) // (channels * bits // 8)
        raise AudioFileError(f"{path}: header announces {length // (channels * bits // 8)} frames but holds "
                             f"{frames}; the file is truncated")
    return tag, channels, rate, bits // 8, start, length


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


_TABLE_LIMIT = 1 << 22  # elements of the precomputed filter table before the per-output path is used


def _resample_taps(flat: np.ndarray, orig: int, new: int, lowpass_filter_width: int, rolloff: float) -> np.ndarray:
    """The same band-limited interpolation as the table, output by output: output ``j`` (time ``j/new``) sums
    the inputs ``i`` with ``|i/orig - j/new| * base <= width``, weighted by the windowed sinc of that distance."""
    base = min(orig, new) * rolloff
    batch, length = flat.shape
    target = math.ceil(new * length / orig)
    taps = math.ceil(2 * lowpass_filter_width * orig / base) + 2
    out = np.empty((batch, target))
    step = max(1, (1 << 22) // taps)  # outputs per chunk, so the gathered windows stay bounded
    for start in range(0, target, step):
        j = np.arange(start, min(start + step, target), dtype=np.float64)
        first = np.floor((j / new - lowpass_filter_width / base) * orig).astype(np.int64)
        i = first[:, None] + np.arange(taps)[None, :]
        t = np.clip((i / orig - j[:, None] / new) * base, -lowpass_filter_width, lowpass_filter_width)
        window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2
        t *= math.pi
        with np.errstate(invalid="ignore", divide="ignore"):
            weights = np.where(t == 0, 1.0, np.sin(t) / t) * window * (base / orig)
        inside = (i >= 0) & (i < length)
        values = np.where(inside[None], flat[:, np.clip(i, 0, length - 1)], 0.0)
        out[:, start:start + len(j)] = np.einsum("bjk,jk->bj", values, weights)
    return out


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
    lead, length = x.shape[:-1], x.shape[-1]
    width = math.ceil(lowpass_filter_width * orig / (min(orig, new) * rolloff))
    if new * (2 * width + orig) > _TABLE_LIMIT:
        # Rates with a small gcd (16001 -> 16000 Hz) make torchaudio's table new x (orig + 2*width) huge
        # (1 GB there, far more for a header claiming 2**32 - 1 Hz), though each output only needs its
        # ~2*width nonzero taps: compute those directly, bounded by the audio's length instead.
        out = _resample_taps(x.reshape(-1, length).astype(np.float64), orig, new, lowpass_filter_width, rolloff)
        return out.reshape(*lead, -1).astype(dtype)
    kernels, width = sinc_resample_kernel(orig, new, lowpass_filter_width, rolloff)
    flat = x.reshape(-1, length).astype(np.float64)
    padded = np.pad(flat, ((0, 0), (width, width + orig)))
    frames = (padded.shape[1] - kernels.shape[1]) // orig + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernels.shape[1], axis=1)[:, ::orig][:, :frames]
    out = np.einsum("bfk,pk->bfp", windows, kernels, optimize=True).reshape(flat.shape[0], -1)
    target = math.ceil(new * length / orig)
    return out[:, :target].reshape(*lead, -1).astype(dtype)
