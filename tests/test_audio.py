"""hubkit.audio: band-limited resampling (torchaudio's sinc_interp_hann defaults) checked against a brute-force
interpolation sum, lengths, pass band, stop band and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hubkit.audio import resample
from hubkit.errors import ArgumentError, ShapeError


def _brute_force(x: np.ndarray, orig: int, new: int, width: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """y[j] = sum_i x[i] * hann(t) * sinc(t) * base/orig, t = (i/orig - j/new) * base, clipped to +-width."""
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    base = min(orig, new) * rolloff
    out = []
    for j in range(math.ceil(new * len(x) / orig)):
        total = 0.0
        for i, v in enumerate(x):
            t = min(max((i / orig - j / new) * base, -width), width)
            window = math.cos(t * math.pi / width / 2) ** 2
            total += v * window * (1.0 if t == 0 else math.sin(math.pi * t) / (math.pi * t)) * base / orig
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("orig, new", [(3, 2), (2, 3), (44100, 16000), (8000, 16000), (5, 1)])
def test_matches_the_interpolation_sum(orig, new):
    x = np.random.default_rng(0).standard_normal(60)
    np.testing.assert_allclose(resample(x, orig, new), _brute_force(x, orig, new), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("orig, new, n", [(44100, 16000, 44100), (8000, 16000, 1001), (16000, 22050, 777), (3, 2, 5)])
def test_length_is_the_ceiling_of_the_ratio(orig, new, n):
    assert resample(np.zeros(n, dtype=np.float32), orig, new).shape == (math.ceil(new * n / orig),)


@pytest.mark.parametrize("orig, new", [(48000, 16000), (8000, 16000), (44100, 16000)])
def test_a_tone_in_the_pass_band_keeps_its_shape_and_constants_stay_constant(orig, new):
    freq = 440.0
    x = np.sin(2 * np.pi * freq * np.arange(orig) / orig).astype(np.float32)
    y = resample(x, orig, new)
    want = np.sin(2 * np.pi * freq * np.arange(new) / new)
    np.testing.assert_allclose(y[300:-300], want[300:-300], atol=2e-3)
    ones = resample(np.ones(orig), orig, new)
    np.testing.assert_allclose(ones[300:-300], 1.0, atol=2e-3)


def test_a_tone_above_the_new_nyquist_frequency_is_filtered_out():
    x = np.sin(2 * np.pi * 7000 * np.arange(16000) / 16000)
    y = resample(x, 16000, 8000)  # 7 kHz is above 4 kHz: it would alias to 1 kHz
    assert np.sqrt(np.mean(y[200:-200] ** 2)) < 0.02


def test_keeps_leading_dims_and_dtype_and_checks_arguments():
    x = np.random.default_rng(1).standard_normal((2, 3, 100)).astype(np.float32)
    y = resample(x, 4, 3)
    assert y.shape == (2, 3, 75) and y.dtype == np.float32
    np.testing.assert_allclose(y[1, 2], resample(x[1, 2], 4, 3), rtol=1e-6)
    same = resample(x, 16000, 16000)
    assert same.dtype == np.float32 and np.array_equal(same, x) and same is not x
    assert resample(x.astype(np.float64), 4, 3).dtype == np.float64
    with pytest.raises(ArgumentError, match="orig_freq"):
        resample(x, 0, 16000)
    with pytest.raises(ArgumentError, match="new_freq"):
        resample(x, 16000, 22050.5)
    with pytest.raises(ShapeError):
        resample(np.float32(1.0), 2, 1)


# ---------------------------------------------------------------- rates with a small gcd


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (16000, 8000), (8000, 16000), (22050, 16000), (7, 5)])
def test_the_per_output_path_equals_the_table(orig, new):
    from hubkit.audio import _resample_taps

    x = np.random.default_rng(orig).standard_normal((2, 3001))
    g = math.gcd(orig, new)
    np.testing.assert_allclose(_resample_taps(x, orig // g, new // g, 6, 0.99), resample(x, orig, new), atol=1e-11)


@pytest.mark.parametrize("orig", [16001, 2**32 - 1])
def test_odd_rates_cost_what_the_audio_justifies(orig):
    import tracemalloc

    x = np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    tracemalloc.start()
    y = resample(x, orig, 16000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert y.dtype == np.float32 and len(y) == -(-16000 * 20000 // orig)
    assert peak < 200 * 2**20  # torchaudio's table for 16001 -> 16000 Hz alone is 16000 x 16013 float64 (2 GB)
