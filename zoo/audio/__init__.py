"""hubkit.zoo.audio: torchaudio's wav2vec 2.0 models with torchaudio's state-dict keys, and the M5 keyword spotter.

Importing this package registers the architectures with ``hubkit.hub.registry``::

    model = hubkit.load("wav2vec2_asr_base_960h", pretrained=True)
    model.transcribe(load_wav("speech.wav"))          # ['HELLO WORLD'] (any PCM WAV; resampled to 16 kHz)
"""

from hubkit.audio import resample
from hubkit.zoo.audio.m5 import M5, m5
from hubkit.zoo.audio.wav2vec2 import (
    LIBRISPEECH_LABELS,
    Wav2Vec2Config,
    Wav2Vec2Model,
    WaveformPreprocess,
    ctc_greedy_decode,
    load_wav,
    wav2vec2_asr_base_960h,
    wav2vec2_base,
)

__all__ = [
    "LIBRISPEECH_LABELS", "M5", "Wav2Vec2Config", "Wav2Vec2Model", "WaveformPreprocess", "ctc_greedy_decode",
    "load_wav", "m5", "resample", "wav2vec2_asr_base_960h", "wav2vec2_base",
]
