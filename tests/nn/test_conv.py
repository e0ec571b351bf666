"""conv1d / conv2d / conv_transpose2d: gradcheck, PyTorch parity, argument and shape errors."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, ShapeError

RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape)


CONV2D_CASES = [
    # input shape, weight shape, kwargs
    ((2, 3, 6, 5), (4, 3, 3, 3), dict(stride=1, padding=1)),
    ((1, 4, 7, 7), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2)),
    ((2, 4, 8, 8), (4, 1, 3, 3), dict(stride=1, padding=2, dilation=2, groups=4)),  # depthwise
    ((2, 3, 5, 5), (5, 3, 1, 1), dict()),  # pointwise
    ((2, 4, 7, 6), (6, 2, 1, 1), dict(stride=2, groups=2)),  # strided pointwise
    ((1, 2, 6, 7), (3, 2, 4, 2), dict(padding="same")),  # even kernel: asymmetric same padding
    ((1, 2, 7, 7), (3, 2, 3, 3), dict(padding="same", dilation=(2, 1))),
    ((2, 2, 6, 5), (3, 2, 3, 3), dict(padding="valid", stride=2)),
    ((6, 5, 5), (4, 3, 3, 3), dict(padding=1, groups=2)),  # unbatched
]


@pytest.mark.parametrize("xs, ws, kw", CONV2D_CASES)
def test_conv2d_gradcheck(xs, ws, kw):
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[0])])


def test_conv2d_without_bias_gradcheck():
    gradcheck(lambda x, w: F.conv2d(x, w, None, stride=2, padding=1), [_rand(1, 2, 5, 5), _rand(3, 2, 3, 3)])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, ws, kw", CONV2D_CASES)
def test_conv2d_matches_torch(xs, ws, kw, dtype):
    compare_with_torch(lambda m, x, w, b: m.conv2d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[0])],
                       dtype=dtype)  # fmt: skip


# LeNet-5's convolutions and a few more small ones: the kernels build wide columns for these; the
# "chunked" run turns wide columns off, so both CPU paths are compared with torch (float32, batch 8)
SMALL_CONV_CASES = [
    ((8, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),
    ((8, 6, 14, 14), (16, 6, 5, 5), dict()),
    ((8, 4, 15, 13), (8, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((8, 3, 12, 12), (5, 3, 3, 3), dict(padding=2, dilation=2)),
]


@pytest.mark.parity
@pytest.mark.parametrize("path", ["wide", "chunked"])
@pytest.mark.parametrize("xs, ws, kw", SMALL_CONV_CASES)
def test_small_conv2d_matches_torch_on_both_cpu_paths(xs, ws, kw, path, monkeypatch):
    from hubkit.kernels import cpu_conv

    if path == "chunked":
        monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
    compare_with_torch(lambda m, x, w, b: m.conv2d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[0])],
                       dtype=np.float32)  # fmt: skip


def test_conv2d_weight_gradient_from_kept_columns_matches_recomputed(monkeypatch):
    from hubkit.kernels import cpu_conv

    x0, w0 = _rand(4, 6, 14, 14), _rand(16, 6, 5, 5)
    grads = []
    for path in ("wide", "chunked"):
        if path == "chunked":
            monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
        x = hubkit.tensor(x0, requires_grad=True)
        w = hubkit.tensor(w0, requires_grad=True)
        y = F.conv2d(x, w, padding=1)
        (y * y).sum().backward()
        grads.append((x.grad.numpy(), w.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-10)


CONV1D_CASES = [
    ((2, 3, 9), (4, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 10), (4, 2, 2), dict(padding="same", dilation=3, groups=2)),
    ((3, 7), (2, 3, 1), dict()),
]


@pytest.mark.parametrize("xs, ws, kw", CONV1D_CASES)
def test_conv1d_gradcheck(xs, ws, kw):
    gradcheck(lambda x, w, b: F.conv1d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[0])])


@pytest.mark.parity
@pytest.mark.parametrize("xs, ws, kw", CONV1D_CASES)
def test_conv1d_matches_torch(xs, ws, kw):
    compare_with_torch(lambda m, x, w, b: m.conv1d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[0])])


CONVT_CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((1, 4, 3, 3), (4, 3, 2, 3), dict(stride=(1, 2), groups=2)),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(stride=1, padding=1, dilation=2, output_padding=1)),
    ((2, 3, 5, 4), (3, 4, 1, 1), dict(stride=3)),
    ((3, 4, 4), (3, 2, 3, 3), dict(padding=1)),  # unbatched
]


@pytest.mark.parametrize("xs, ws, kw", CONVT_CASES)
def test_conv_transpose2d_gradcheck(xs, ws, kw):
    groups = kw.get("groups", 1)
    gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[1] * groups)])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, ws, kw", CONVT_CASES)
def test_conv_transpose2d_matches_torch(xs, ws, kw, dtype):
    groups = kw.get("groups", 1)
    compare_with_torch(lambda m, x, w, b: m.conv_transpose2d(x, w, b, **kw),
                       [_rand(*xs), _rand(*ws), _rand(ws[1] * groups)], dtype=dtype)  # fmt: skip


def test_conv2d_stays_float32_and_gives_expected_shape():
    x = hubkit.randn(2, 3, 16, 16)
    w = hubkit.randn(8, 3, 3, 3)
    y = F.conv2d(x, w, hubkit.zeros(8), stride=2, padding=1)
    assert y.shape == (2, 8, 8, 8) and y.dtype == np.float32


def test_conv_errors_name_op_and_shapes():
    x = hubkit.randn(1, 3, 8, 8)
    with pytest.raises(ShapeError, match=r"conv2d: input \(1, 3, 8, 8\) has 3 channels .*\(4, 2, 3, 3\)"):
        F.conv2d(x, hubkit.randn(4, 2, 3, 3))
    with pytest.raises(ShapeError, match="too small"):
        F.conv2d(hubkit.randn(1, 3, 2, 2), hubkit.randn(4, 3, 5, 5))
    with pytest.raises(ShapeError, match=r"bias has shape \(3,\), expected \(4,\)"):
        F.conv2d(x, hubkit.randn(4, 3, 3, 3), hubkit.randn(3))
    with pytest.raises(ShapeError, match="4-d"):
        F.conv2d(hubkit.randn(8, 8), hubkit.randn(4, 3, 3, 3))
    with pytest.raises(ArgumentError, match="'same' is not supported for strided"):
        F.conv2d(x, hubkit.randn(4, 3, 3, 3), padding="same", stride=2)
    with pytest.raises(ArgumentError, match="padding must be"):
        F.conv2d(x, hubkit.randn(4, 3, 3, 3), padding="full")
    with pytest.raises(ArgumentError, match="stride"):
        F.conv2d(x, hubkit.randn(4, 3, 3, 3), stride=0)
    with pytest.raises(DTypeError, match="share a dtype"):
        F.conv2d(x, hubkit.randn(4, 3, 3, 3, dtype=np.float64))
    with pytest.raises(ArgumentError, match="output_padding"):
        F.conv_transpose2d(x, hubkit.randn(3, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ShapeError, match="conv_transpose2d"):
        F.conv_transpose2d(x, hubkit.randn(4, 2, 3, 3))
