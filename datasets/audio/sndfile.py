"""Reading compressed audio (FLAC, OGG, ...) for the audio datasets, through the optional ``soundfile`` package.

``soundfile`` wraps libsndfile (its wheels on PyPI ship the library); it is the ``audio`` extra of hubkit and is
imported only when a dataset that needs it is used.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hubkit.errors import DatasetError, MissingDependencyError

__all__ = ["read_soundfile", "require_soundfile"]


def require_soundfile(purpose: str) -> Any:
    """The ``soundfile`` module, or :class:`MissingDependencyError` saying how to install it."""
    try:
        import soundfile
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package 'soundfile' (libsndfile) to decode its audio, and it is not "
            "installed. Install it with `pip install 'hubkit[audio]'` (or `pip install soundfile`)."
        ) from exc
    return soundfile


def read_soundfile(path: str | os.PathLike[str], purpose: str = "this dataset") -> tuple[np.ndarray, int]:
    """``(waveform (channels, frames) float32, sample_rate)`` of an audio file libsndfile decodes.

    Integer PCM is scaled as torchaudio's ``load`` does by default: 16-bit samples by ``1 / 2**15``.
    A missing or undecodable file raises ``DatasetError`` (the dataset's files are damaged).
    """
    soundfile = require_soundfile(purpose)
    if not os.path.isfile(path):  # libsndfile reports a missing file only as "System error"
        raise DatasetError(f"no audio file at {path}; the extracted dataset is incomplete")
    try:
        data, rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)
    except RuntimeError as exc:  # soundfile.LibsndfileError
        raise DatasetError(f"{path}: cannot decode the audio ({exc}); the file is damaged. Delete the extracted "
                           "folder and construct the dataset again with download=True.") from exc
    return np.ascontiguousarray(data.T), int(rate)
