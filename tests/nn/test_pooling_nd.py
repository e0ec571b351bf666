"""1-d and 3-d pooling, adaptive pooling, LP pooling and max unpooling (functional and layers): gradcheck,
PyTorch parity (values, indices, gradients, reprs), bad input."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, tie_free

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, ShapeError

RNG = np.random.default_rng(5)

MAX3D_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=1, dilation=(2, 1, 1), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(1, 2, 3), stride=(2, 1, 3), ceil_mode=True),
]
AVG3D_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0), divisor_override=5),
]
AVG1D_CASES = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
]
ADAPTIVE3D_OUT = [(2, 2, 2), (3, 2, 4), (5, 3, 1), (None, 2, 1), 1]
LP_CASES = [
    (1, 2, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (1, 3.0, dict(kernel_size=2)),
    (2, 2, dict(kernel_size=(2, 3), stride=(1, 2))),
    (2, 1.5, dict(kernel_size=2, ceil_mode=True)),
    (3, 2, dict(kernel_size=2, stride=(1, 2, 1))),
]


def _pos(*shape):
    """Positive values away from 0, so x ** p is smooth for any p."""
    return RNG.uniform(0.5, 2.0, size=shape)


@pytest.mark.parametrize("kw", MAX3D_CASES)
def test_max_pool3d_gradcheck(kw):
    gradcheck(lambda x: F.max_pool3d(x, **kw), [tie_free((1, 2, 5, 6, 5))])


@pytest.mark.parametrize("kw", AVG3D_CASES)
def test_avg_pool3d_gradcheck(kw):
    gradcheck(lambda x: F.avg_pool3d(x, **kw), [RNG.standard_normal((2, 1, 5, 4, 5))])


@pytest.mark.parametrize("kw", AVG1D_CASES)
def test_avg_pool1d_gradcheck(kw):
    gradcheck(lambda x: F.avg_pool1d(x, **kw), [RNG.standard_normal((2, 3, 9))])


@pytest.mark.parametrize("out", ADAPTIVE3D_OUT)
def test_adaptive_pools_3d_gradcheck(out):
    gradcheck(lambda x: F.adaptive_avg_pool3d(x, out), [RNG.standard_normal((1, 2, 5, 3, 4))])
    gradcheck(lambda x: F.adaptive_max_pool3d(x, out), [tie_free((1, 2, 5, 3, 4))])


@pytest.mark.parametrize("out", [1, 3, 4, 9])
def test_adaptive_pools_1d_gradcheck(out):
    gradcheck(lambda x: F.adaptive_avg_pool1d(x, out), [RNG.standard_normal((2, 2, 7))])
    gradcheck(lambda x: F.adaptive_max_pool1d(x, out), [tie_free((2, 2, 7))])


@pytest.mark.parametrize("dims, p, kw", LP_CASES)
def test_lp_pool_gradcheck(dims, p, kw):
    fn = (F.lp_pool1d, F.lp_pool2d, F.lp_pool3d)[dims - 1]
    gradcheck(lambda x: fn(x, p, **kw), [_pos(1, 2, *(5,) * dims)])


def test_pooling_of_non_contiguous_inputs_gradcheck():
    x = tie_free((1, 2, 4, 5, 6))
    gradcheck(lambda t: F.max_pool3d(t.transpose(2, 4), 2, stride=1), [x])
    gradcheck(lambda t: F.avg_pool3d(t.permute(0, 1, 3, 4, 2), 2, padding=1), [x])
    gradcheck(lambda t: F.adaptive_max_pool3d(t.transpose(3, 4), (3, 2, 2)), [x])
    gradcheck(lambda t: F.avg_pool1d(t.transpose(1, 2), 2), [RNG.standard_normal((2, 6, 3))])


def test_max_unpool_gradcheck():
    x = tie_free((1, 2, 4, 6, 4))
    _, idx = F.max_pool3d(hubkit.tensor(x), 2, return_indices=True)
    gradcheck(lambda v: F.max_unpool3d(v, idx, 2), [RNG.standard_normal(tuple(idx.shape))])
    # non-overlapping windows: overlapping ones may pick one pixel twice, and unpooling then keeps one write
    _, idx2 = F.max_pool2d(hubkit.tensor(x[0, :, :, :5]), 2, return_indices=True)
    gradcheck(lambda v: F.max_unpool2d(v, idx2, 2, output_size=(5, 4)), [RNG.standard_normal(tuple(idx2.shape))])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", MAX3D_CASES)
def test_max_pool3d_matches_torch_with_indices(kw, dtype):
    import torch

    x = tie_free((2, 3, 6, 7, 5), seed=1)
    compare_with_torch(lambda m, t: m.max_pool3d(t, **kw), [x], dtype=dtype)
    compare_with_torch(lambda m, t: m.max_pool3d(t, return_indices=True, **kw)[0], [x[0]], dtype=dtype)
    h_idx = F.max_pool3d(hubkit.tensor(x), return_indices=True, **kw)[1]
    t_idx = torch.nn.functional.max_pool3d(torch.from_numpy(x), return_indices=True, **kw)[1]
    assert h_idx.dtype == np.int64
    np.testing.assert_array_equal(h_idx.numpy(), t_idx.numpy())


@pytest.mark.parity
def test_max_pool3d_ties_and_nan_follow_torch():
    import torch

    x = RNG.integers(0, 3, size=(2, 2, 4, 6, 4)).astype(np.float32)  # most windows hold tied maxima
    x[0, 0, 1, 2, 3] = np.nan
    g = RNG.standard_normal((2, 2, 2, 3, 2)).astype(np.float32)
    hx = hubkit.tensor(x, requires_grad=True)
    hy, h_idx = F.max_pool3d(hx, 2, return_indices=True)
    hy.backward(hubkit.tensor(g))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty, t_idx = torch.nn.functional.max_pool3d(tx, 2, return_indices=True)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(hy.numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(h_idx.numpy(), t_idx.numpy())
    np.testing.assert_array_equal(hx.grad.numpy(), tx.grad.numpy())


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", AVG3D_CASES)
def test_avg_pool3d_matches_torch(kw, dtype):
    compare_with_torch(lambda m, t: m.avg_pool3d(t, **kw), [RNG.standard_normal((2, 3, 6, 7, 5))], dtype=dtype)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", AVG1D_CASES)
def test_avg_pool1d_matches_torch(kw, dtype):
    compare_with_torch(lambda m, t: m.avg_pool1d(t, **kw), [RNG.standard_normal((2, 3, 11))], dtype=dtype)
    compare_with_torch(lambda m, t: m.avg_pool1d(t, **kw), [RNG.standard_normal((3, 11))], dtype=dtype)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("out", ADAPTIVE3D_OUT)
def test_adaptive_pools_3d_match_torch(out, dtype):
    import torch

    x = tie_free((2, 3, 7, 5, 6), seed=3)
    compare_with_torch(lambda m, t: m.adaptive_avg_pool3d(t, out), [x], dtype=dtype)
    compare_with_torch(lambda m, t: m.adaptive_max_pool3d(t, out), [x], dtype=dtype)
    h_idx = F.adaptive_max_pool3d(hubkit.tensor(x), out, return_indices=True)[1].numpy()
    t_idx = torch.nn.functional.adaptive_max_pool3d(torch.from_numpy(x), out, return_indices=True)[1].numpy()
    np.testing.assert_array_equal(h_idx, t_idx)


@pytest.mark.parity
def test_adaptive_max_pool3d_picks_the_first_of_tied_maxima_like_torch():
    import torch

    x = RNG.integers(0, 2, size=(2, 2, 5, 6, 7)).astype(np.float64)
    for out in [(2, 3, 3), (3, 4, 5)]:
        h_idx = F.adaptive_max_pool3d(hubkit.tensor(x), out, return_indices=True)[1].numpy()
        t_idx = torch.nn.functional.adaptive_max_pool3d(torch.from_numpy(x), out, return_indices=True)[1].numpy()
        np.testing.assert_array_equal(h_idx, t_idx)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("out", [1, 3, 4, 13])
def test_adaptive_pools_1d_match_torch(out, dtype):
    import torch

    x = tie_free((2, 3, 9), seed=4)
    compare_with_torch(lambda m, t: m.adaptive_avg_pool1d(t, out), [x], dtype=dtype)
    compare_with_torch(lambda m, t: m.adaptive_max_pool1d(t, out), [x], dtype=dtype)
    compare_with_torch(lambda m, t: m.adaptive_avg_pool1d(t, out), [x[0]], dtype=dtype)
    h_idx = F.adaptive_max_pool1d(hubkit.tensor(x), out, return_indices=True)[1].numpy()
    t_idx = torch.nn.functional.adaptive_max_pool1d(torch.from_numpy(x), out, return_indices=True)[1].numpy()
    np.testing.assert_array_equal(h_idx, t_idx)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dims, p, kw", LP_CASES)
def test_lp_pool_matches_torch(dims, p, kw, dtype):
    name = f"lp_pool{dims}d"
    compare_with_torch(lambda m, t: getattr(m, name)(t, p, **kw), [_pos(2, 2, *(6,) * dims)], dtype=dtype)


@pytest.mark.parity
def test_lp_pool_edge_cases_match_torch():
    import torch

    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :2, :2] = RNG.standard_normal((2, 2))  # one window with signal, three all-zero windows
    compare_with_torch(lambda m, t: m.lp_pool2d(t, 2, 2), [x])  # zero windows: gradient 0, not nan
    compare_with_torch(lambda m, t: m.lp_pool1d(t, 1, 2), [RNG.standard_normal((1, 2, 6))])  # negative sums, p = 1
    compare_with_torch(lambda m, t: m.lp_pool2d(t, float("inf"), 2), [tie_free((1, 2, 4, 6))])
    h = F.lp_pool1d(hubkit.tensor([[[-1.0, 2.0, -3.0, 0.5]]]), 3, 2).numpy()
    t = torch.nn.functional.lp_pool1d(torch.tensor([[[-1.0, 2.0, -3.0, 0.5]]]), 3, 2).numpy()
    np.testing.assert_allclose(h, t, rtol=1e-6)  # the negative window is nan in both


@pytest.mark.parity
@pytest.mark.parametrize("dims, kw, output_size", [
    (1, dict(kernel_size=3, stride=2, padding=1), None),
    (2, dict(kernel_size=2), (1, 1, 7, 9)),
    (2, dict(kernel_size=3, stride=2, padding=1), None),
    (3, dict(kernel_size=2, stride=(1, 2, 2)), (7, 9, 6)),
])  # fmt: skip
def test_max_unpool_matches_torch(dims, kw, output_size):
    import torch

    x = tie_free((1, 2) + (7, 9, 6)[:dims], seed=6)
    tpool = getattr(torch.nn.functional, f"max_pool{dims}d")
    _, t_idx = tpool(torch.from_numpy(x), return_indices=True, **kw)
    idx = t_idx.numpy()
    v = RNG.standard_normal(idx.shape)
    name = f"max_unpool{dims}d"
    compare_with_torch(lambda m, t, i: getattr(m, name)(t, i, output_size=output_size, **kw), [v, idx])


# ---------------------------------------------------------------- layers

LAYER_CASES = [
    ("MaxPool3d", (2,), {}, (2, 3, 4, 6, 4)),
    ("MaxPool3d", ((2, 3, 2), (1, 2, 2), 1), {"dilation": (2, 1, 1), "ceil_mode": True}, (1, 2, 5, 7, 5)),
    ("AvgPool1d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 10)),
    ("AvgPool3d", (3, 2, 1), {"divisor_override": 7}, (2, 2, 5, 6, 5)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool3d", ((3, None, 2),), {}, (2, 2, 5, 4, 6)),
    ("AdaptiveMaxPool3d", (2,), {}, (2, 2, 5, 4, 6)),
    ("LPPool1d", (2, 3), {"stride": 2, "ceil_mode": True}, (2, 3, 10)),
    ("LPPool2d", (1.5, (2, 3)), {}, (2, 3, 6, 7)),
    ("LPPool3d", (3, 2), {}, (1, 2, 4, 4, 4)),
]


def _layer(m, name, args, kwargs):
    """The hubkit layer when ``m`` is hubkit's functional namespace, else torch's."""
    import torch

    return (getattr(nn, name) if m is F else getattr(torch.nn, name))(*args, **kwargs)


@pytest.mark.parity
@pytest.mark.parametrize("name, args, kwargs, shape", LAYER_CASES)
def test_pooling_layers_match_torch(name, args, kwargs, shape):
    import torch

    x = tie_free(shape, seed=7) if "Max" in name else _pos(*shape)
    compare_with_torch(lambda m, t: _layer(m, name, args, kwargs)(t), [x], dtype=np.float32)
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


@pytest.mark.parity
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_max_unpool_layers_invert_max_pool_layers_like_torch(dims):
    import torch

    x = tie_free((1, 2) + (6, 8, 4)[:dims], seed=8)
    pool_name, unpool_name = f"MaxPool{dims}d", f"MaxUnpool{dims}d"
    h_pool = getattr(nn, pool_name)(2, return_indices=True)
    t_pool = getattr(torch.nn, pool_name)(2, return_indices=True)
    h_unpool, t_unpool = getattr(nn, unpool_name)(2), getattr(torch.nn, unpool_name)(2)
    assert repr(h_unpool) == repr(t_unpool)
    hy = h_unpool(*h_pool(hubkit.tensor(x)))
    ty = t_unpool(*t_pool(torch.from_numpy(x)))
    np.testing.assert_array_equal(hy.numpy(), ty.numpy())


def test_pooling_layers_accept_unbatched_input_and_keep_rank():
    x = hubkit.randn(2, 6, 6, 6)
    assert nn.MaxPool3d(2)(x).shape == (2, 3, 3, 3)
    y, idx = nn.MaxPool3d(2, return_indices=True)(x)
    assert y.shape == idx.shape == (2, 3, 3, 3) and idx.dtype == np.int64
    assert nn.AvgPool3d(3, 1, 1)(x).shape == (2, 6, 6, 6)
    assert nn.AdaptiveAvgPool3d((1, 2, 3))(x).shape == (2, 1, 2, 3)
    assert nn.AdaptiveMaxPool3d(2, return_indices=True)(x)[1].shape == (2, 2, 2, 2)
    assert nn.AvgPool1d(2)(hubkit.randn(3, 8)).shape == (3, 4)
    assert nn.AdaptiveMaxPool1d(3)(hubkit.randn(3, 8)).shape == (3, 3)
    assert nn.LPPool2d(2, 2)(hubkit.randn(3, 4, 4)).shape == (3, 2, 2)
    assert nn.AvgPool3d(2)(x).dtype == np.float32


def test_adaptive_avg_pool3d_of_uniform_windows_is_a_block_mean():
    x = RNG.standard_normal((2, 3, 4, 6, 8)).astype(np.float32)
    y = F.adaptive_avg_pool3d(hubkit.tensor(x), (2, 3, 2)).numpy()
    np.testing.assert_allclose(y, x.reshape(2, 3, 2, 2, 3, 2, 2, 4).mean(axis=(3, 5, 7)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- bad input


def test_pooling_nd_errors_are_clear():
    x = hubkit.randn(1, 2, 6, 6, 6)
    with pytest.raises(ShapeError, match=r"max_pool3d: expected a 5-d .* got shape \(6, 6\)"):
        F.max_pool3d(hubkit.randn(6, 6), 2)
    with pytest.raises(ArgumentError, match="at most half"):
        F.max_pool3d(x, 2, padding=2)
    with pytest.raises(ArgumentError, match="at most half"):
        F.avg_pool1d(hubkit.randn(1, 2, 8), 3, padding=2)
    with pytest.raises(ShapeError, match="too small"):
        F.avg_pool3d(hubkit.randn(1, 1, 2, 6, 6), 3)
    with pytest.raises(ArgumentError, match="kernel_size must be an int or 3 of them"):
        F.max_pool3d(x, (2, 2))
    with pytest.raises(ArgumentError, match="divisor_override"):
        F.avg_pool3d(x, 2, divisor_override=0)
    with pytest.raises(ArgumentError, match="output_size"):
        F.adaptive_max_pool3d(x, (2, 2))
    with pytest.raises(ArgumentError, match="output_size entries must be positive"):
        F.adaptive_avg_pool1d(hubkit.randn(1, 2, 8), 0)
    with pytest.raises(DTypeError, match="floating-point"):
        F.adaptive_avg_pool3d(hubkit.zeros(1, 1, 2, 2, 2, dtype=hubkit.int64), 1)
    with pytest.raises(ArgumentError, match="norm_type must be a non-zero"):
        F.lp_pool2d(hubkit.randn(1, 1, 4, 4), 0, 2)
    with pytest.raises(ArgumentError, match="norm_type must be a non-zero"):
        nn.LPPool1d(0, 2)


def test_max_unpool_errors_are_clear():
    y, idx = F.max_pool2d(hubkit.randn(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(ArgumentError, match=r"invalid output_size \(7, 7\) \(dim 0 must be between 2 and 6"):
        F.max_unpool2d(y, idx, 2, output_size=(7, 7))
    with pytest.raises(ShapeError, match="must have the input's shape"):
        F.max_unpool2d(y, idx[..., :1], 2)
    with pytest.raises(DTypeError, match="integer"):
        F.max_unpool2d(y, idx.float(), 2)
    with pytest.raises(ArgumentError, match="outside the output plane"):
        F.max_unpool2d(y, idx + 100, 2)
