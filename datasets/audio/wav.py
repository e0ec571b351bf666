"""Reading WAV files (PCM or IEEE float, plain or extensible) for the audio datasets: ``hubkit.audio.read_wav``
with the datasets' error type."""

from __future__ import annotations

import os

import numpy as np

from hubkit.audio import read_wav as _read_wav
from hubkit.errors import AudioFileError, DatasetError

__all__ = ["read_wav"]


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """``(waveform (channels, frames) float32, sample_rate)``; a bad file raises ``DatasetError`` (the dataset's
    files are corrupted), see ``hubkit.audio.read_wav``."""
    try:
        return _read_wav(path)
    except AudioFileError as exc:
        raise DatasetError(str(exc)) from exc
