"""Winograd F(2x2, 3x3) and F(4x4, 3x3) (``cpu_winograd.py``, numba) against the im2col + GEMM path, which stays
the reference.

The odd shapes: odd output sizes (a last tile partly outside the map), asymmetric padding of 0-2, more or fewer
output than input channels, batch 1, a non-contiguous input, float64, with and without bias, many small row
blocks and one, forward and input gradient, both tile sizes; then the selection rules, the results'
independence from the thread count, and the layer through autograd (its weight gradient stays on the GEMM
path) against torch under ``-m parity``.
"""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit.kernels import _jit, cpu_conv, cpu_wide, cpu_winograd

RNG = np.random.default_rng(23)
calls: list = []  # input shapes of the Winograd calls of the current test
needs_numba = pytest.mark.skipif(not _jit.available(), reason="numba is not installed: no Winograd kernels to test")


@pytest.fixture(params=[2, 4], ids=["F2x2", "F4x4"])
def tile(request, monkeypatch):
    """Runs the test with every Winograd call in tiles of 2x2 outputs, then of 4x4 (whatever the map's size)."""
    monkeypatch.setattr(cpu_winograd, "_TILE4_MIN_SIDE", 1 if request.param == 4 else 1 << 30)
    real = cpu_winograd.transform_weights
    sizes = []

    def recorded(w, tile=2):
        sizes.append(tile)
        return real(w, tile)

    monkeypatch.setattr(cpu_winograd, "transform_weights", recorded)
    yield request.param
    assert sizes and set(sizes) == {request.param}


@pytest.fixture(autouse=True)
def small_layers_too(monkeypatch):
    """Let the small test layers take the Winograd path (the real thresholds are for speed, not correctness):
    not the direct convolution nor wide columns, which small layers take first. Every Winograd call is counted."""
    monkeypatch.setattr(cpu_winograd, "_MIN_CHANNELS", 1)
    monkeypatch.setattr(cpu_winograd, "_MIN_TILES", 1)
    monkeypatch.setattr(cpu_wide, "_DIRECT_MAX_ROWS", 0)
    monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
    monkeypatch.setattr(_jit, "MIN_WORK", 0)
    real = cpu_winograd.conv2d

    def counted(*args):
        calls.append(args[1].shape)
        return real(*args)

    monkeypatch.setattr(cpu_winograd, "conv2d", counted)
    calls.clear()
    threads = hubkit.get_num_threads()
    yield
    hubkit.set_num_threads(threads)


def _gemm_reference(x, w, b, pads, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(cpu_winograd, "applies", lambda *args: None)
        return cpu_conv.conv2d(x, w, b, (1, 1), pads, (1, 1), 1)


# x shape, output channels, pads
CASES = [
    ((2, 5, 9, 9), 7, ((1, 1), (1, 1))),  # odd output: the last tile row and column half outside
    ((1, 6, 8, 10), 4, ((0, 2), (1, 0))),  # batch 1, asymmetric padding
    ((3, 4, 7, 7), 9, ((0, 0), (0, 0))),  # no padding: a 5x5 output
    ((2, 3, 5, 6), 3, ((2, 2), (2, 2))),  # padding 2: tiles that read only zeros at the corners
    ((4, 8, 12, 11), 8, ((1, 0), (0, 1))),
]


@needs_numba
@pytest.mark.parametrize("xs, oc, pads", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("block_bytes", [1, 1 << 20])
def test_winograd_matches_the_gemm_path(xs, oc, pads, dtype, bias, block_bytes, tile, monkeypatch):
    monkeypatch.setattr(cpu_winograd, "_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(cpu_winograd, "_BLOCK_MIN_TILES", 1)  # with 1 byte: one row of tiles per block
    monkeypatch.setattr(cpu_winograd, "_BLOCK_FLOOR_TILES", 1)
    x = RNG.standard_normal((xs[0], xs[2], xs[3], xs[1])).astype(dtype).transpose(0, 3, 1, 2)  # not contiguous
    w = RNG.standard_normal((oc, xs[1], 3, 3)).astype(dtype)
    b = RNG.standard_normal(oc).astype(dtype) if bias else None
    assert cpu_winograd.applies(x, w, (1, 1), pads, (1, 1), 1) is not None
    got = cpu_conv.conv2d(x, w, b, (1, 1), pads, (1, 1), 1)
    assert calls == [x.shape]
    want = _gemm_reference(x, w, b, pads, monkeypatch)
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@needs_numba
@pytest.mark.parametrize("xs, oc, pads", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_input_gradient_matches_the_gemm_path(xs, oc, pads, dtype, tile, monkeypatch):
    """The input gradient of a 3x3 stride-1 layer is the Winograd forward of gy with the flipped, transposed
    kernel and padding 2 - pad."""
    w = RNG.standard_normal((oc, xs[1], 3, 3)).astype(dtype)
    oh, ow = xs[2] + sum(pads[0]) - 2, xs[3] + sum(pads[1]) - 2
    gy = RNG.standard_normal((xs[0], oh, ow, oc)).astype(dtype).transpose(0, 3, 1, 2)  # not contiguous
    got = cpu_conv.conv2d_grad_input(gy, w, xs[2:], (1, 1), pads, (1, 1), 1)
    assert calls == [gy.shape]
    with monkeypatch.context() as m:
        m.setattr(cpu_winograd, "applies", lambda *args: None)
        want = cpu_conv.conv2d_grad_input(gy, w, xs[2:], (1, 1), pads, (1, 1), 1)
    assert got.shape == want.shape == (xs[0], xs[1], xs[2], xs[3]) and got.dtype == want.dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@needs_numba
def test_winograd_keeps_no_columns():
    x, w = RNG.standard_normal((2, 4, 6, 6)).astype(np.float32), RNG.standard_normal((4, 4, 3, 3)).astype(np.float32)
    y, columns = cpu_conv.conv2d(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, keep_columns=True)
    assert columns is None and y.shape == (2, 4, 6, 6) and calls == [x.shape]


@needs_numba
def test_winograd_results_do_not_depend_on_the_thread_count(tile, monkeypatch):
    """The row blocks depend on the layer's shape only; each is one set of BLAS calls on one thread."""
    monkeypatch.setattr(cpu_winograd, "_BLOCK_BYTES", 1)
    x, w = RNG.standard_normal((4, 8, 14, 14)).astype(np.float32), RNG.standard_normal((8, 8, 3, 3)).astype(np.float32)
    hubkit.set_num_threads(1)
    one = cpu_conv.conv2d(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    hubkit.set_num_threads(2)
    two = cpu_conv.conv2d(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert len(calls) == 2
    np.testing.assert_array_equal(one, two)


@needs_numba
@pytest.mark.parametrize("size, g", [(2, cpu_winograd._G), (4, cpu_winograd._G4)])
def test_weight_transform_is_g_w_g_transposed(size, g):
    w = RNG.standard_normal((3, 2, 3, 3))
    u = cpu_winograd.transform_weights(w, size)
    alpha = size + 2
    assert u.shape == (alpha * alpha, 3, 2)
    for o in range(3):
        for c in range(2):
            np.testing.assert_allclose(u[:, o, c].reshape(alpha, alpha), g @ w[o, c] @ g.T, rtol=1e-13, atol=1e-14)


def test_f4x4_matrices_compute_a_3x3_correlation_of_a_6x6_tile():
    """The transforms written out in the compiled loops, as matrices: A^T [(G g G^T) * (B^T d B)] A = d * g."""
    bt = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                   [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float)  # fmt: skip
    at = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float)
    g4 = cpu_winograd._G4
    d, g = RNG.standard_normal((6, 6)), RNG.standard_normal((3, 3))
    want = [[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(4)] for i in range(4)]
    np.testing.assert_allclose(at @ ((g4 @ g @ g4.T) * (bt @ d @ bt.T)) @ at.T, want, rtol=1e-12, atol=1e-12)


def test_tiles_of_4x4_outputs_from_8x8_maps():
    assert cpu_winograd.tile_size((56, 56)) == cpu_winograd.tile_size((8, 9)) == 4
    assert cpu_winograd.tile_size((7, 7)) == cpu_winograd.tile_size((7, 56)) == 2


@needs_numba
@pytest.mark.parametrize("size", [2, 4])
def test_float32_error_stays_small_on_a_resnet_layer(size, monkeypatch):
    """256 channels at 14x14 (ResNet's layer3), against the float64 result of the same path: F(4x4)'s larger
    transforms cost precision, but it stays within 3e-5 of the output's scale (F(2x2): 2e-6)."""
    x = RNG.standard_normal((2, 256, 14, 14)).astype(np.float32)
    w = (RNG.standard_normal((256, 256, 3, 3)) * 0.05).astype(np.float32)
    jit, pads = _jit.compiled(), ((1, 1), (1, 1))
    want = cpu_winograd.conv2d(jit, x.astype(np.float64), w.astype(np.float64), None, pads, (14, 14), size)
    got = cpu_winograd.conv2d(jit, x, w, None, pads, (14, 14), size)
    bound = 3e-5 if size == 4 else 2e-6
    assert np.abs(got - want).max() <= bound * np.abs(want).max()


def test_winograd_runs_on_resnet_layers_and_nowhere_else(monkeypatch):
    monkeypatch.setattr(cpu_winograd, "_MIN_CHANNELS", 32)
    monkeypatch.setattr(cpu_winograd, "_MIN_TILES", 128)
    f32 = np.float32
    x, w = np.zeros((16, 64, 56, 56), f32), np.zeros((64, 64, 3, 3), f32)
    same = ((1, 1), (1, 1))

    def applies(x=x, w=w, stride=(1, 1), pads=same, dilation=(1, 1), groups=1):
        return cpu_winograd.applies(x, w, stride, pads, dilation, groups) is not None

    if _jit.compiled() is not None:
        assert applies()  # ResNet's 64->64 at 56x56
        assert applies(np.zeros((1, 128, 28, 28), f32), np.zeros((128, 128, 3, 3), f32))  # 196 tiles
    assert not applies(stride=(2, 2))
    assert not applies(dilation=(2, 2))
    assert not applies(w=np.zeros((64, 32, 3, 3), f32), groups=2)
    assert not applies(w=np.zeros((64, 64, 5, 5), f32))
    assert not applies(pads=((3, 3), (3, 3)))
    assert not applies(x=np.zeros((16, 16, 56, 56), f32), w=np.zeros((16, 16, 3, 3), f32))  # too few channels
    assert not applies(x=np.zeros((1, 256, 14, 14), f32), w=np.zeros((256, 256, 3, 3), f32))  # 49 tiles
    assert not applies(w=np.zeros((64, 64, 3, 3), np.float64))  # mixed dtypes
    assert not applies(x=x.astype(np.float16), w=w.astype(np.float16))
    monkeypatch.setattr(_jit, "_enabled", False)
    assert not applies()


@needs_numba
@pytest.mark.parity
def test_conv_layer_on_the_winograd_path_matches_torch(tile, monkeypatch):
    """Forward and input gradient through Winograd, weight gradient through im2col + GEMM, against torch."""
    import torch

    x = RNG.standard_normal((2, 6, 10, 9)).astype(np.float32)
    layer = hubkit.nn.Conv2d(6, 5, 3, padding=1)
    theirs = torch.nn.Conv2d(6, 5, 3, padding=1)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in layer.state_dict().items()})
    assert cpu_winograd.applies(x, layer.weight.numpy(), (1, 1), ((1, 1), (1, 1)), (1, 1), 1) is not None
    xh, xt = hubkit.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_()
    yh, yt = layer(xh), theirs(xt)
    assert calls == [x.shape]
    calls.clear()
    np.testing.assert_allclose(yh.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    (yh * yh).sum().backward()
    (yt * yt).sum().backward()
    assert calls == [yh.shape]  # the input gradient
    np.testing.assert_allclose(xh.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
