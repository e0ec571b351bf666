"""interpolate (nearest, bilinear with align_corners) and one_hot."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, ShapeError

RNG = np.random.default_rng(0)

INTERP_CASES = [
    ((2, 2, 4, 5), dict(size=(8, 10), mode="nearest")),
    ((1, 3, 7, 6), dict(size=(3, 4), mode="nearest")),
    ((1, 2, 5, 3), dict(scale_factor=2.5, mode="nearest")),
    ((2, 3, 9), dict(scale_factor=0.5, mode="nearest")),
    ((2, 3, 5), dict(size=12, mode="nearest")),
    ((2, 2, 4, 5), dict(size=(7, 9), mode="bilinear", align_corners=False)),
    ((2, 2, 4, 5), dict(size=(7, 9), mode="bilinear", align_corners=True)),
    ((1, 2, 7, 6), dict(size=(3, 4), mode="bilinear", align_corners=False)),
    ((1, 2, 5, 4), dict(scale_factor=(1.7, 2.0), mode="bilinear", align_corners=False)),
    ((1, 2, 5, 4), dict(scale_factor=1.7, mode="bilinear", align_corners=False, recompute_scale_factor=True)),
    ((1, 1, 3, 3), dict(size=(1, 1), mode="bilinear", align_corners=True)),
]


@pytest.mark.parametrize("shape, kw", INTERP_CASES)
def test_interpolate_gradcheck(shape, kw):
    gradcheck(lambda x: F.interpolate(x, **kw), [RNG.standard_normal(shape)])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kw", INTERP_CASES)
def test_interpolate_matches_torch(shape, kw, dtype):
    compare_with_torch(lambda m, x: m.interpolate(x, **kw), [RNG.standard_normal(shape)], dtype=dtype)


def test_nearest_upsampling_repeats_pixels():
    x = hubkit.tensor(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2))
    y = F.interpolate(x, scale_factor=2)
    np.testing.assert_array_equal(y.numpy()[0, 0], np.repeat(np.repeat(x.numpy()[0, 0], 2, 0), 2, 1))
    assert y.dtype == np.float32


def test_bilinear_align_corners_keeps_corner_values():
    x = RNG.standard_normal((1, 1, 3, 4)).astype(np.float32)
    y = F.interpolate(hubkit.tensor(x), size=(7, 9), mode="bilinear", align_corners=True).numpy()
    for i, j in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        np.testing.assert_allclose(y[0, 0, i, j], x[0, 0, i, j], rtol=1e-6)


def test_interpolate_errors():
    x = hubkit.randn(1, 1, 4, 4)
    with pytest.raises(ArgumentError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ArgumentError, match="align_corners only applies"):
        F.interpolate(x, size=2, align_corners=True)
    with pytest.raises(ArgumentError, match="mode must be"):
        F.interpolate(x, size=2, mode="cubic")
    with pytest.raises(ShapeError, match="4-d input"):
        F.interpolate(hubkit.randn(1, 1, 4), size=2, mode="bilinear")
    with pytest.raises(ArgumentError, match="size must be"):
        F.interpolate(x, size=(2, 2, 2))


def test_one_hot_encodes_indices_as_int64():
    y = F.one_hot(hubkit.tensor([[0, 2], [1, 0]]))
    assert y.shape == (2, 2, 3) and y.dtype == np.int64
    np.testing.assert_array_equal(y.numpy()[0], [[1, 0, 0], [0, 0, 1]])
    assert F.one_hot(hubkit.tensor([1]), num_classes=5).shape == (1, 5)


@pytest.mark.parity
def test_one_hot_matches_torch():
    import torch

    idx = RNG.integers(0, 6, size=(3, 4))
    np.testing.assert_array_equal(F.one_hot(hubkit.tensor(idx), 7).numpy(),
                                  torch.nn.functional.one_hot(torch.from_numpy(idx), 7).numpy())  # fmt: skip


def test_one_hot_errors():
    with pytest.raises(DTypeError, match="integer"):
        F.one_hot(hubkit.tensor([0.5]))
    with pytest.raises(ArgumentError, match="out of range for num_classes=2"):
        F.one_hot(hubkit.tensor([2]), num_classes=2)
    with pytest.raises(ArgumentError, match="non-negative"):
        F.one_hot(hubkit.tensor([-1]))
