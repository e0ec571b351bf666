"""interpolate in every mode, the Upsample layers, pixel_shuffle/unshuffle and channel_shuffle: gradcheck,
PyTorch parity (forward, gradients, reprs), bad input."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError

RNG = np.random.default_rng(3)

INTERP_CASES = [
    ((2, 2, 5), dict(size=9, mode="linear")),
    ((1, 2, 7), dict(size=3, mode="linear", align_corners=True)),
    ((2, 1, 5), dict(scale_factor=1.7, mode="linear")),
    ((1, 2, 5, 6), dict(size=(9, 4), mode="bicubic")),
    ((1, 2, 5, 6), dict(size=(9, 4), mode="bicubic", align_corners=True)),
    ((1, 1, 6, 5), dict(scale_factor=(1.5, 0.6), mode="bicubic")),
    ((1, 1, 4, 4), dict(size=(1, 1), mode="bicubic", align_corners=True)),
    ((1, 2, 3, 4, 3), dict(size=(5, 3, 4), mode="trilinear")),
    ((1, 1, 3, 4, 3), dict(scale_factor=1.5, mode="trilinear", align_corners=True)),
    ((1, 1, 3, 4, 3), dict(scale_factor=(2, 0.5, 1.4), mode="trilinear", recompute_scale_factor=True)),
    ((1, 2, 3, 4, 3), dict(size=(5, 3, 4), mode="nearest")),
    ((1, 1, 3, 4, 3), dict(scale_factor=(1.5, 0.75, 2), mode="nearest")),
    ((1, 2, 3, 4, 3), dict(size=(5, 3, 4), mode="nearest-exact")),
    ((2, 2, 7), dict(scale_factor=1.6, mode="nearest-exact")),
    ((1, 2, 7, 6), dict(size=(3, 11), mode="nearest-exact")),
    ((1, 2, 7, 6), dict(size=(3, 4), mode="area")),
    ((1, 2, 6, 5, 4), dict(scale_factor=0.5, mode="area")),
    ((2, 2, 9), dict(size=4, mode="area")),
    ((1, 2, 9, 8), dict(size=(4, 5), mode="bilinear", antialias=True)),
    ((1, 2, 9, 8), dict(size=(4, 5), mode="bicubic", antialias=True)),
    ((1, 1, 5, 8), dict(size=(11, 3), mode="bilinear", antialias=True)),
    ((1, 1, 5, 8), dict(size=(11, 3), mode="bicubic", antialias=True)),
    ((1, 1, 9, 8), dict(size=(4, 5), mode="bilinear", antialias=True, align_corners=True)),
    ((1, 1, 9, 8), dict(scale_factor=(0.3, 0.45), mode="bicubic", antialias=True)),
    ((1, 1, 9, 8), dict(size=(4, 11), mode="lanczos", antialias=True)),
    ((1, 2, 3, 5), dict(scale_factor=1.2, mode="bilinear")),  # H rounds back to 3: a copy, as in torch
    ((1, 2, 3, 5), dict(scale_factor=1.2, mode="bicubic")),  # H rounds back to 3 but samples at 1/1.2
]


@pytest.mark.parametrize("shape, kw", INTERP_CASES)
def test_interpolate_gradcheck(shape, kw):
    gradcheck(lambda x: F.interpolate(x, **kw), [RNG.standard_normal(shape)])


def test_interpolate_of_a_non_contiguous_input_gradcheck():
    gradcheck(lambda x: F.interpolate(x.transpose(2, 4), size=(3, 5, 4), mode="trilinear"),
              [RNG.standard_normal((1, 2, 3, 3, 4))])  # fmt: skip
    gradcheck(lambda x: F.interpolate(x.transpose(2, 3), scale_factor=1.5, mode="bicubic", antialias=True),
              [RNG.standard_normal((1, 1, 4, 5))])  # fmt: skip


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kw", INTERP_CASES)
def test_interpolate_matches_torch(shape, kw, dtype):
    compare_with_torch(lambda m, x: m.interpolate(x, **kw), [RNG.standard_normal(shape)], dtype=dtype)


@pytest.mark.parity
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialiased_downscaling_of_an_image_matches_torch(mode):
    # a realistic shrink (64x48 -> 21x17, channels 3) in float32
    compare_with_torch(lambda m, x: m.interpolate(x, size=(21, 17), mode=mode, antialias=True),
                       [RNG.uniform(0, 1, size=(2, 3, 64, 48))], dtype=np.float32)  # fmt: skip


def test_trilinear_keeps_a_linear_ramp_exact():
    d, h, w = np.meshgrid(np.arange(3.0), np.arange(4.0), np.arange(5.0), indexing="ij")
    ramp = (2 * d - h + 0.5 * w)[None, None]
    y = F.interpolate(hubkit.tensor(ramp), size=(5, 7, 9), mode="trilinear", align_corners=True).numpy()[0, 0]
    dd, hh, ww = np.meshgrid(np.linspace(0, 2, 5), np.linspace(0, 3, 7), np.linspace(0, 4, 9), indexing="ij")
    np.testing.assert_allclose(y, 2 * dd - hh + 0.5 * ww, atol=1e-12)


def test_nearest_exact_picks_the_pixel_under_each_output_centre():
    x = hubkit.tensor(np.arange(5, dtype=np.float32).reshape(1, 1, 5))
    np.testing.assert_array_equal(F.interpolate(x, size=3, mode="nearest-exact").numpy()[0, 0], [0, 2, 4])
    np.testing.assert_array_equal(F.interpolate(x, size=3, mode="nearest").numpy()[0, 0], [0, 1, 3])


def test_area_downsampling_by_an_integer_factor_is_a_block_mean():
    x = RNG.standard_normal((2, 3, 4, 6)).astype(np.float32)
    y = F.interpolate(hubkit.tensor(x), scale_factor=0.5, mode="area").numpy()
    np.testing.assert_allclose(y, x.reshape(2, 3, 2, 2, 3, 2).mean(axis=(3, 5)), rtol=1e-6)


def test_bicubic_interpolate_keeps_float32():
    y = F.interpolate(hubkit.randn(1, 2, 4, 4), scale_factor=2, mode="bicubic")
    assert y.dtype == np.float32 and y.shape == (1, 2, 8, 8)


# ---------------------------------------------------------------- Upsample layers

UPSAMPLE_CASES = [
    ("Upsample", (), {"scale_factor": 2}, (2, 3, 4, 5)),
    ("Upsample", (), {"size": (5, 7), "mode": "bilinear"}, (2, 3, 4, 5)),
    ("Upsample", (), {"scale_factor": (1.5, 2.0), "mode": "bicubic", "align_corners": True}, (1, 2, 4, 5)),
    ("Upsample", (), {"scale_factor": 2, "mode": "trilinear"}, (1, 2, 2, 3, 2)),
    ("Upsample", (), {"size": 7, "mode": "linear", "align_corners": False}, (2, 3, 4)),
    ("Upsample", (), {"scale_factor": 1.7, "mode": "nearest-exact", "recompute_scale_factor": True}, (1, 2, 4, 5)),
    ("UpsamplingNearest2d", (), {"scale_factor": 3}, (2, 2, 3, 4)),
    ("UpsamplingBilinear2d", (), {"size": (6, 9)}, (2, 2, 3, 4)),
]


def _layer(m, name, args, kwargs):
    """The hubkit layer when ``m`` is hubkit's functional namespace, else torch's."""
    import torch

    return (getattr(nn, name) if m is F else getattr(torch.nn, name))(*args, **kwargs)


@pytest.mark.parity
@pytest.mark.parametrize("name, args, kwargs, shape", UPSAMPLE_CASES)
def test_upsample_layers_match_torch(name, args, kwargs, shape):
    import torch

    compare_with_torch(lambda m, x: _layer(m, name, args, kwargs)(x), [RNG.standard_normal(shape)], dtype=np.float32)
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_upsample_stores_scale_factor_as_floats_like_torch():
    assert nn.Upsample(scale_factor=2).scale_factor == 2.0
    assert nn.Upsample(scale_factor=(2, 3)).scale_factor == (2.0, 3.0)
    assert nn.Upsample(size=4).scale_factor is None
    up = nn.UpsamplingBilinear2d(scale_factor=2)
    assert up.mode == "bilinear" and up.align_corners is True and up.name == "UpsamplingBilinear2d"


def test_deprecated_upsample_functions_are_interpolate():
    x = hubkit.randn(1, 2, 3, 4)
    np.testing.assert_array_equal(F.upsample(x, scale_factor=2).numpy(), F.interpolate(x, scale_factor=2).numpy())
    np.testing.assert_array_equal(F.upsample_nearest(x, size=(5, 5)).numpy(),
                                  F.interpolate(x, size=(5, 5)).numpy())  # fmt: skip
    bilinear = F.interpolate(x, size=(5, 5), mode="bilinear", align_corners=True)
    np.testing.assert_array_equal(F.upsample_bilinear(x, size=(5, 5)).numpy(), bilinear.numpy())


# ---------------------------------------------------------------- pixel and channel shuffles

SHUFFLE_CASES = [
    ("pixel_shuffle", 2, (2, 8, 3, 4)),
    ("pixel_shuffle", 3, (2, 1, 9, 2, 3)),  # extra leading dims
    ("pixel_shuffle", 2, (4, 3, 3)),  # unbatched
    ("pixel_unshuffle", 2, (2, 3, 4, 6)),
    ("pixel_unshuffle", 3, (3, 6, 9)),
    ("channel_shuffle", 3, (2, 6, 2, 3)),
    ("channel_shuffle", 2, (1, 4, 5)),
]


@pytest.mark.parametrize("name, factor, shape", SHUFFLE_CASES)
def test_shuffles_gradcheck(name, factor, shape):
    gradcheck(lambda x: getattr(F, name)(x, factor), [RNG.standard_normal(shape)])


@pytest.mark.parity
@pytest.mark.parametrize("name, factor, shape", SHUFFLE_CASES)
def test_shuffles_match_torch(name, factor, shape):
    compare_with_torch(lambda m, x: getattr(m, name)(x, factor), [RNG.standard_normal(shape)])


@pytest.mark.parity
@pytest.mark.parametrize("name, arg, shape", [
    ("PixelShuffle", 2, (2, 8, 3, 4)), ("PixelUnshuffle", 2, (2, 2, 4, 6)), ("ChannelShuffle", 2, (2, 4, 3, 3)),
])  # fmt: skip
def test_shuffle_layers_match_torch(name, arg, shape):
    import torch

    compare_with_torch(lambda m, x: _layer(m, name, (arg,), {})(x), [RNG.standard_normal(shape)], dtype=np.float32)
    assert repr(getattr(nn, name)(arg)) == repr(getattr(torch.nn, name)(arg))


def test_pixel_unshuffle_inverts_pixel_shuffle():
    x = hubkit.randn(2, 12, 3, 5)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())
    assert nn.PixelShuffle(2)(x).shape == (2, 3, 6, 10)


def test_channel_shuffle_interleaves_the_groups():
    x = hubkit.tensor(np.arange(6, dtype=np.float32).reshape(1, 6, 1))
    np.testing.assert_array_equal(F.channel_shuffle(x, 2).numpy().ravel(), [0, 3, 1, 4, 2, 5])


# ---------------------------------------------------------------- bad input


def test_interpolate_errors_name_what_is_wrong():
    x = hubkit.randn(1, 1, 4, 4)
    with pytest.raises(ArgumentError, match="exactly one of size and scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ArgumentError, match="mode must be one of"):
        F.interpolate(x, size=2, mode="cubic")
    with pytest.raises(ShapeError, match="mode='trilinear' expects a 5-d input"):
        F.interpolate(x, size=2, mode="trilinear")
    with pytest.raises(ShapeError, match="mode='linear' expects a 3-d input"):
        F.interpolate(x, size=2, mode="linear")
    with pytest.raises(ShapeError, match="expected a 3-d .* 4-d .* or 5-d"):
        F.interpolate(hubkit.randn(4, 4), size=2)
    with pytest.raises(ArgumentError, match="align_corners only applies"):
        F.interpolate(x, size=2, mode="area", align_corners=False)
    with pytest.raises(ArgumentError, match="antialias applies to the bilinear, bicubic"):
        F.interpolate(x, size=2, mode="nearest", antialias=True)
    with pytest.raises(ArgumentError, match="lanczos' needs antialias=True"):
        F.interpolate(x, size=2, mode="lanczos")
    with pytest.raises(ArgumentError, match="recompute_scale_factor is not meaningful with an explicit size"):
        F.interpolate(x, size=2, recompute_scale_factor=True)
    with pytest.raises(ArgumentError, match="size must be an int or 2 of them"):
        F.interpolate(x, size=(2, 2, 2))
    with pytest.raises(ArgumentTypeError, match="size must hold ints"):
        F.interpolate(x, size=(2.0, 3))
    with pytest.raises(ArgumentError, match="scale_factor must be a positive number or 2 of them"):
        F.interpolate(x, scale_factor=(2, 2, 2))
    with pytest.raises(ShapeError, match="empty output"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(DTypeError, match="floating-point"):
        F.interpolate(hubkit.zeros(1, 1, 2, 2, dtype=hubkit.int64), size=3, mode="bicubic")


def test_nearest_modes_accept_integer_images():
    x = hubkit.tensor(np.arange(4, dtype=np.uint8).reshape(1, 1, 2, 2))
    y = F.interpolate(x, scale_factor=2, mode="nearest-exact")
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y.numpy()[0, 0], np.repeat(np.repeat(x.numpy()[0, 0], 2, 0), 2, 1))


def test_shuffle_errors_name_what_is_wrong():
    with pytest.raises(ShapeError, match=r"channel dim \(3\) .* divisible by upscale_factor\*\*2 = 4"):
        F.pixel_shuffle(hubkit.randn(1, 3, 2, 2), 2)
    with pytest.raises(ShapeError, match="must be divisible by downscale_factor 2"):
        F.pixel_unshuffle(hubkit.randn(1, 3, 3, 4), 2)
    with pytest.raises(ShapeError, match="at least 3 dims"):
        F.pixel_shuffle(hubkit.randn(4, 4), 2)
    with pytest.raises(ArgumentError, match="upscale_factor must be a positive int"):
        F.pixel_shuffle(hubkit.randn(1, 4, 2, 2), 0)
    with pytest.raises(ShapeError, match="more than 2 dims"):
        F.channel_shuffle(hubkit.randn(2, 4), 2)
    with pytest.raises(ShapeError, match=r"channels \(3\) must be divisible by groups \(2\)"):
        nn.ChannelShuffle(2)(hubkit.randn(1, 3, 2))
