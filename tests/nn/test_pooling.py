"""Pooling ops: gradcheck, PyTorch parity (values, indices, gradients), argument and shape errors."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, tie_free

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ShapeError

MAX_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(3, 2), padding=1, dilation=(1, 2)),
    dict(kernel_size=3, stride=3, ceil_mode=True),
]


@pytest.mark.parametrize("kw", MAX_CASES)
def test_max_pool2d_gradcheck(kw):
    gradcheck(lambda x: F.max_pool2d(x, **kw), [tie_free((2, 2, 9, 8))])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", MAX_CASES)
def test_max_pool2d_matches_torch_with_indices(kw, dtype):
    x = tie_free((2, 3, 9, 8), seed=1)
    compare_with_torch(lambda m, t: m.max_pool2d(t, **kw), [x], dtype=dtype)
    import torch

    h_idx = F.max_pool2d(hubkit.tensor(x), return_indices=True, **kw)[1]
    t_idx = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)[1]
    assert h_idx.dtype == np.int64
    np.testing.assert_array_equal(h_idx.numpy(), t_idx.numpy())


@pytest.mark.parity
@pytest.mark.parametrize("shape", [(4, 6, 28, 28), (2, 3, 9, 7)])
def test_2x2_max_pool_sends_gradient_to_first_maximum_like_torch(shape):
    import torch

    # small integers: most windows have tied maxima
    x = np.random.default_rng(4).integers(0, 3, size=shape).astype(np.float32)
    g = np.random.default_rng(5).standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(np.float32)
    hx = hubkit.tensor(x, requires_grad=True)
    hy, h_idx = F.max_pool2d(hx, 2, return_indices=True)
    hy.backward(hubkit.tensor(g))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty, t_idx = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(hy.numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(h_idx.numpy(), t_idx.numpy())
    np.testing.assert_array_equal(hx.grad.numpy(), tx.grad.numpy())


def test_max_pool2d_return_indices_gives_flat_positions_and_gradient_still_flows():
    x = hubkit.tensor(tie_free((1, 1, 4, 4)), requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(np.take(x.numpy()[0, 0].ravel(), idx.numpy()[0, 0]), y.numpy()[0, 0])
    y.sum().backward()
    assert x.grad.numpy().sum() == 4 and set(np.unique(x.grad.numpy())) == {0.0, 1.0}


MAX1D_CASES = [dict(kernel_size=3), dict(kernel_size=2, stride=1, padding=1, dilation=2, ceil_mode=True)]


@pytest.mark.parametrize("kw", MAX1D_CASES)
def test_max_pool1d_gradcheck(kw):
    gradcheck(lambda x: F.max_pool1d(x, **kw), [tie_free((2, 3, 10))])


@pytest.mark.parity
@pytest.mark.parametrize("kw", MAX1D_CASES)
def test_max_pool1d_matches_torch_with_indices(kw):
    x = tie_free((2, 3, 11), seed=2)
    compare_with_torch(lambda m, t: m.max_pool1d(t, **kw), [x])
    compare_with_torch(lambda m, t: m.max_pool1d(t, return_indices=True, **kw)[0], [x[0]])
    import torch

    h_idx = F.max_pool1d(hubkit.tensor(x), return_indices=True, **kw)[1].numpy()
    np.testing.assert_array_equal(h_idx, torch.nn.functional.max_pool1d(torch.from_numpy(x), return_indices=True,
                                                                        **kw)[1].numpy())  # fmt: skip


AVG_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=3, stride=1, padding=1, divisor_override=4),
]


@pytest.mark.parametrize("kw", AVG_CASES)
def test_avg_pool2d_gradcheck(kw):
    gradcheck(lambda x: F.avg_pool2d(x, **kw), [np.random.default_rng(0).standard_normal((2, 2, 7, 8))])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", AVG_CASES)
def test_avg_pool2d_matches_torch(kw, dtype):
    compare_with_torch(lambda m, t: m.avg_pool2d(t, **kw), [np.random.default_rng(1).standard_normal((2, 3, 9, 8))],
                       dtype=dtype)  # fmt: skip


ADAPTIVE_CASES = [
    ((8, 6), (4, 3)),
    ((7, 5), (3, 2)),
    ((5, 9), (5, 4)),
    ((6, 6), 1),
    ((3, 4), (5, 7)),
    ((7, 6), (None, 4)),
]


@pytest.mark.parametrize("in_hw, out", ADAPTIVE_CASES)
def test_adaptive_pools_gradcheck(in_hw, out):
    gradcheck(lambda x: F.adaptive_avg_pool2d(x, out), [tie_free((2, 2, *in_hw))])
    gradcheck(lambda x: F.adaptive_max_pool2d(x, out), [tie_free((2, 2, *in_hw))])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("in_hw, out", ADAPTIVE_CASES)
def test_adaptive_pools_match_torch(in_hw, out, dtype):
    x = tie_free((2, 3, *in_hw), seed=3)
    compare_with_torch(lambda m, t: m.adaptive_avg_pool2d(t, out), [x], dtype=dtype)
    compare_with_torch(lambda m, t: m.adaptive_max_pool2d(t, out), [x], dtype=dtype)
    import torch

    h_idx = F.adaptive_max_pool2d(hubkit.tensor(x), out, return_indices=True)[1].numpy()
    t_idx = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(x), out, return_indices=True)[1].numpy()
    np.testing.assert_array_equal(h_idx, t_idx)


def test_unbatched_inputs_keep_their_rank():
    x = hubkit.randn(3, 8, 8)
    assert F.max_pool2d(x, 2).shape == (3, 4, 4)
    assert F.avg_pool2d(x, 2).shape == (3, 4, 4)
    assert F.adaptive_avg_pool2d(x, (2, 3)).shape == (3, 2, 3)
    y, idx = F.adaptive_max_pool2d(x, 2, return_indices=True)
    assert y.shape == idx.shape == (3, 2, 2)
    assert F.max_pool1d(hubkit.randn(3, 10), 2).shape == (3, 5)
    assert F.max_pool2d(x, 2).dtype == np.float32


def test_pooling_errors_are_clear():
    x = hubkit.randn(1, 2, 6, 6)
    with pytest.raises(ArgumentError, match="at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ArgumentError, match="at most half"):
        F.avg_pool2d(x, 3, padding=2)
    with pytest.raises(ShapeError, match="too small"):
        F.max_pool2d(hubkit.randn(1, 1, 2, 2), 3)
    with pytest.raises(ShapeError, match=r"max_pool2d: expected a 4-d .* got shape \(6,\)"):
        F.max_pool2d(hubkit.randn(6), 2)
    with pytest.raises(ArgumentError, match="kernel_size"):
        F.max_pool2d(x, 0)
    with pytest.raises(ArgumentError, match="output_size"):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ArgumentError, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
