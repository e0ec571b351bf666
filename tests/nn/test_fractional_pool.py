"""Fractional max pooling (F.fractional_max_pool2d/3d, their *_with_indices forms, nn.FractionalMaxPool2d/3d)
and the max_pool/adaptive_max_pool *_with_indices functionals."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import gradcheck, tie_free

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, ShapeError

CASES2 = [((2, 3, 9, 11), (2, 3), (4, 5)), ((1, 2, 6, 6), 2, (5, 5)), ((2, 1, 8, 7), (3, 1), (3, 7)),
          ((3, 5, 5), 2, (2, 3))]
CASES3 = [((1, 2, 6, 7, 8), 2, (3, 4, 4)), ((2, 1, 5, 5, 6), (1, 2, 3), (4, 3, 3)), ((2, 5, 5, 5), 2, (3, 3, 3))]


def _samples(shape, dims, seed=0):
    batch = 1 if len(shape) == dims + 1 else shape[0]
    channels = shape[-dims - 1]
    return np.random.default_rng(seed).random((batch, channels, dims))


@pytest.mark.parametrize("shape, kernel, out", CASES2)
def test_gradcheck_2d(shape, kernel, out):
    samples = _samples(shape, 2)
    gradcheck(lambda x, s: F.fractional_max_pool2d(x, kernel, output_size=out, _random_samples=s),
              [tie_free(shape), samples], wrt=[0])


@pytest.mark.parametrize("shape, kernel, out", CASES3)
def test_gradcheck_3d(shape, kernel, out):
    samples = _samples(shape, 3)
    gradcheck(lambda x, s: F.fractional_max_pool3d(x, kernel, output_size=out, _random_samples=s),
              [tie_free(shape), samples], wrt=[0])


def test_windows_overlap_and_gradients_accumulate():
    data = np.arange(36.0).reshape(1, 1, 6, 6) / 100
    data[0, 0, 2, 2] = 10.0  # inside the 3x3 windows starting at rows/cols 0, 1 and 2
    x = hubkit.tensor(data, requires_grad=True)
    s = hubkit.tensor([[[0.5, 0.5]]], dtype=hubkit.float64)  # starts 0, 1, 2, 3 along both dims
    y, idx = F.fractional_max_pool2d(x, 3, output_size=(4, 4), return_indices=True, _random_samples=s)
    y.sum().backward()
    assert x.grad.sum().item() == 16.0  # one unit per output
    assert x.grad[0, 0, 2, 2].item() == 9.0  # nine windows share that maximum
    np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy().reshape(-1)[idx.numpy()])


def test_nan_wins_and_indices_are_int64():
    x = hubkit.tensor([[[[1.0, float("nan")], [3.0, 2.0]]]])
    y, idx = F.fractional_max_pool2d(x, 2, output_size=1, return_indices=True,
                                     _random_samples=hubkit.tensor([[[0.3, 0.3]]]))
    assert np.isnan(y.item()) and idx.item() == 1 and idx.dtype == hubkit.int64


def test_output_ratio_and_default_samples_come_from_the_global_generator():
    x = hubkit.randn(2, 3, 10, 12)
    assert F.fractional_max_pool2d(x, 2, output_ratio=0.5).shape == (2, 3, 5, 6)
    assert F.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.25)).shape == (2, 3, 5, 3)
    hubkit.manual_seed(3)
    a = F.fractional_max_pool2d(x, 2, output_size=(4, 4), return_indices=True)[1]
    hubkit.manual_seed(3)
    b = F.fractional_max_pool2d(x, 2, output_size=(4, 4), return_indices=True)[1]
    assert a.tolist() == b.tolist()


def test_modules():
    m = nn.FractionalMaxPool2d(3, output_ratio=0.5)
    assert repr(m) == "FractionalMaxPool2d()" and list(m.state_dict()) == []
    assert m(hubkit.randn(2, 3, 10, 10)).shape == (2, 3, 5, 5)
    fixed = nn.FractionalMaxPool3d(2, output_size=(3, 3, 3), return_indices=True,
                                   _random_samples=hubkit.rand(1, 2, 3))
    assert list(fixed.state_dict()) == ["_random_samples"]
    y1, i1 = fixed(hubkit.randn(2, 6, 6, 6))
    assert y1.shape == i1.shape == (2, 3, 3, 3)
    with pytest.raises(ArgumentError, match="requires specifying either an output size, or a pooling ratio"):
        nn.FractionalMaxPool2d(2)
    with pytest.raises(ArgumentError, match="only one of output_size and output_ratio may be specified"):
        nn.FractionalMaxPool2d(2, output_size=3, output_ratio=0.5)
    with pytest.raises(ArgumentError, match="output_ratio must be between 0 and 1"):
        nn.FractionalMaxPool2d(2, output_ratio=1.5)


def test_bad_arguments():
    x = hubkit.randn(1, 2, 6, 6)
    with pytest.raises(ArgumentError, match="pool height 2 too large relative to input height 6"):
        F.fractional_max_pool2d(x, 2, output_size=(6, 5))
    with pytest.raises(ArgumentError, match="pool time 2 too large relative to input time 6"):
        F.fractional_max_pool3d(hubkit.randn(1, 1, 6, 6, 6), 2, output_size=5)
    with pytest.raises(ArgumentError, match="requires specifying either an output_size or an output_ratio"):
        F.fractional_max_pool2d(x, 2)
    with pytest.raises(ArgumentError, match="kernel_size must either be a single Int or tuple of 2 Ints"):
        F.fractional_max_pool2d(x, (2, 2, 2), output_size=3)
    with pytest.raises(ShapeError, match="_random_samples.size\\(1\\) equals to input channel size"):
        F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=hubkit.rand(1, 3, 2))
    with pytest.raises(ShapeError, match="size\\(0\\) no less then input batch size"):
        F.fractional_max_pool2d(hubkit.randn(2, 2, 6, 6), 2, output_size=3, _random_samples=hubkit.rand(1, 2, 2))
    with pytest.raises(DTypeError, match="same dtype as input"):
        F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=hubkit.rand(1, 2, 2, dtype=hubkit.float64))
    with pytest.raises(ShapeError, match="expected 3D or 4D tensor"):
        F.fractional_max_pool2d(hubkit.randn(6, 6), 2, output_size=3)


def test_with_indices_forms_always_return_indices():
    x = hubkit.tensor(tie_free((2, 3, 8, 8), dtype=np.float32))
    for name, args in (("max_pool2d", (2,)), ("adaptive_max_pool2d", ((3, 3),))):
        y, idx = getattr(F, name + "_with_indices")(x, *args)
        y2, idx2 = getattr(F, name)(x, *args, return_indices=True)
        assert y.tolist() == y2.tolist() and idx.tolist() == idx2.tolist()
    assert len(F.max_pool1d_with_indices(x[:, :, 0], 2)) == 2
    assert len(F.max_pool3d_with_indices(x[:, :, None, :, :].expand(2, 3, 2, 8, 8), 2)) == 2
    assert len(F.adaptive_max_pool1d_with_indices(x[:, :, 0], 3)) == 2
    assert len(F.adaptive_max_pool3d_with_indices(hubkit.randn(1, 2, 4, 4, 4), 2)) == 2
    assert len(F.fractional_max_pool2d_with_indices(x, 2, output_size=3)) == 2


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dims, case", [(2, c) for c in range(len(CASES2))] + [(3, c) for c in range(len(CASES3))])
def test_matches_torch(dims, case, dtype):
    import torch

    shape, kernel, out = (CASES2 if dims == 2 else CASES3)[case]
    x = tie_free(shape, seed=case).astype(dtype)
    samples = _samples(shape, dims, seed=case).astype(dtype)
    h_fn = getattr(F, f"fractional_max_pool{dims}d")
    t_fn = getattr(torch.nn.functional, f"fractional_max_pool{dims}d")
    hx, tx = hubkit.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_()
    hy, hi = h_fn(hx, kernel, output_size=out, return_indices=True, _random_samples=hubkit.tensor(samples))
    ty, ti = t_fn(tx, kernel, output_size=out, return_indices=True, _random_samples=torch.from_numpy(samples))
    np.testing.assert_array_equal(hi.numpy(), ti.numpy())
    np.testing.assert_array_equal(hy.detach().numpy(), ty.detach().numpy())
    w = np.random.default_rng(1).standard_normal(hy.shape).astype(dtype)
    (hy * hubkit.tensor(w)).sum().backward()
    (ty * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(hx.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parity
def test_random_windows_match_torch_over_many_sizes():
    import torch

    rng = np.random.default_rng(0)
    for trial in range(60):
        dims = 2 + trial % 2
        dtype = (np.float32, np.float64)[trial // 2 % 2]
        spatial = rng.integers(4, 12, dims)
        kernel = rng.integers(1, 3, dims)
        out = [int(rng.integers(1, n - k + (1 if dims == 3 else 2))) for n, k in zip(spatial, kernel)]
        x = rng.standard_normal((2, 2, *spatial)).astype(dtype)
        s = rng.random((2, 2, dims)).astype(dtype)
        kernel = tuple(int(k) for k in kernel)
        h = getattr(F, f"fractional_max_pool{dims}d")(hubkit.tensor(x), kernel, output_size=out,
                                                       return_indices=True, _random_samples=hubkit.tensor(s))
        t = getattr(torch.nn.functional, f"fractional_max_pool{dims}d")(
            torch.from_numpy(x), kernel, output_size=out, return_indices=True, _random_samples=torch.from_numpy(s))
        np.testing.assert_array_equal(h[1].numpy(), t[1].numpy())


@pytest.mark.parity
def test_module_state_dict_matches_torch():
    import torch

    samples = np.random.default_rng(0).random((1, 2, 2)).astype(np.float32)
    h = nn.FractionalMaxPool2d(2, output_size=3, _random_samples=hubkit.tensor(samples))
    t = torch.nn.FractionalMaxPool2d(2, output_size=3, _random_samples=torch.from_numpy(samples))
    assert list(h.state_dict()) == list(t.state_dict()) and repr(h) == repr(t)
    x = np.random.default_rng(1).standard_normal((1, 2, 7, 7)).astype(np.float32)
    np.testing.assert_array_equal(h(hubkit.tensor(x)).numpy(), t(torch.from_numpy(x)).numpy())


@pytest.mark.parity
@pytest.mark.parametrize("name, args", [("max_pool1d", (3, 2, 1)), ("max_pool2d", (3, 2, 1)), ("max_pool3d", (2,)),
                                        ("adaptive_max_pool1d", (3,)), ("adaptive_max_pool2d", ((3, 2),)),
                                        ("adaptive_max_pool3d", (2,))])
def test_with_indices_match_torch(name, args):
    import torch

    dims = int(name[-2])
    x = tie_free((2, 3) + (6,) * dims, seed=4)
    hy, hi = getattr(F, name + "_with_indices")(hubkit.tensor(x), *args)
    ty, ti = getattr(torch.nn.functional, name + "_with_indices")(torch.from_numpy(x), *args)
    np.testing.assert_array_equal(hy.numpy(), ty.numpy())
    np.testing.assert_array_equal(hi.numpy(), ti.numpy())
