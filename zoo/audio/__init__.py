"""hubkit.zoo.audio: torchaudio's wav2vec 2.0 models with torchaudio's state-dict keys, and the M5 keyword spotter.

Importing this package registers the architectures with ``hubkit.hub.registry``::

    model = hubkit.load("wav2vec2_asr_base_960h", pretrained=True)
    model.transcribe(load_wav("speech.wav"))          # ['HELLO WORLD'] (any PCM WAV; resampled to 16 kHz)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hubkit.audio import resample
from hubkit.errors import ShapeError
from hubkit.zoo.audio.m5 import M5, m5
from hubkit.zoo.audio.wav2vec2 import (
    LIBRISPEECH_LABELS,
    Wav2Vec2Config,
    Wav2Vec2Model,
    ctc_greedy_decode,
    load_wav,
    wav2vec2_asr_base_960h,
    wav2vec2_base,
)

__all__ = [
    "LIBRISPEECH_LABELS", "M5", "Wav2Vec2Config", "Wav2Vec2Model", "WaveformPreprocess", "ctc_greedy_decode",
    "load_wav", "m5", "resample", "wav2vec2_asr_base_960h", "wav2vec2_base",
]


class WaveformPreprocess:
    """An audio weight tag's preprocessing: a WAV path (read with :func:`load_wav`, resampled to ``sample_rate``)
    or a 1-d array of samples already at ``sample_rate`` -> float32 mono waveform (samples,)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def __call__(self, audio: Any) -> np.ndarray:
        if isinstance(audio, (str, Path)):
            return load_wav(audio, sample_rate=self.sample_rate)
        wav = np.asarray(audio, dtype=np.float32)
        if wav.ndim != 1:
            raise ShapeError(f"expected a mono waveform (samples,), got shape {wav.shape}; average the channels")
        return wav

    def __repr__(self) -> str:
        return f"WaveformPreprocess(sample_rate={self.sample_rate})"
