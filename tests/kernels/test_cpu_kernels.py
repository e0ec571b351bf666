"""CPU kernels against naive loop references; backward kernels through the adjoint (dot-product) identity."""

from __future__ import annotations

import kernel_reference as ref
import numpy as np
import pytest

from hubkit.kernels import _jit, cpu, cpu_conv, cpu_depthwise, cpu_pool, cpu_wide

RNG = np.random.default_rng(0)


def _rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def _tie_free(*shape):
    """A shuffled linspace: all values distinct, so max/argmax have one answer."""
    return RNG.permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape)


CONV_CASES = [
    # (N, C, H, W), (OC, KH, KW), stride, pads, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 4, 9, 8), (6, 3, 2), (2, 3), ((0, 1), (2, 0)), (1, 1), 2),
    ((1, 4, 10, 10), (4, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 4),  # depthwise, dilated
    ((3, 2, 5, 5), (5, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # pointwise
    ((3, 4, 7, 5), (6, 1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 2),  # strided pointwise, groups
    ((2, 3, 8, 8), (2, 1, 1), (1, 1), ((1, 0), (0, 1)), (1, 1), 1),  # 1x1 with padding
    ((2, 3, 11, 9), (4, 5, 3), (3, 2), ((2, 1), (0, 0)), (2, 1), 1),
    # depthwise, stride 1, undilated: the tap-accumulation path
    ((2, 4, 9, 8), (4, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4),
    ((1, 3, 12, 10), (3, 7, 7), (1, 1), ((3, 3), (3, 3)), (1, 1), 3),  # ConvNeXt's 7x7
    ((2, 5, 6, 7), (5, 5, 3), (1, 1), ((2, 1), (0, 2)), (1, 1), 5),  # asymmetric padding
    ((2, 2, 5, 5), (2, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 2),  # no padding
    # depthwise, strided: the gradients spread gy out and use the same kernels
    ((2, 4, 9, 8), (4, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 4),
    ((1, 3, 10, 11), (3, 5, 5), (2, 3), ((2, 2), (1, 2)), (1, 1), 3),  # uneven: unreached rows get zeros
    ((2, 4, 1, 19), (6, 1, 5), (1, 2), ((0, 0), (2, 3)), (1, 2), 2),  # 1-d (H = 1), grouped, strided, dilated
]


@pytest.fixture(autouse=True, params=["numpy", "compiled"])
def kernel_impl(request, monkeypatch):
    """Every test runs on the numpy kernels (the reference) and on the compiled ones (numba, when installed)."""
    if request.param == "compiled":
        if not _jit.available():
            pytest.skip("numba is not installed: the compiled kernels are not used")
        monkeypatch.setattr(_jit, "_enabled", True)
        monkeypatch.setattr(_jit, "MIN_WORK", 0)  # these shapes are small
        assert _jit.compiled() is not None
    else:
        monkeypatch.setattr(_jit, "_enabled", False)
    return request.param


@pytest.fixture(params=["wide", "chunked", "tiles"])
def conv_path(request, monkeypatch):
    """Run a test with wide columns (the default for these small shapes), with them turned off, or in tiles of one
    group and a few output positions (``_conv_in_tiles``, the path of images whose columns are large)."""
    if request.param in ("chunked", "tiles"):
        monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
    if request.param == "tiles":
        monkeypatch.setattr(cpu_conv, "_TILE_MIN_BYTES", 0)
        monkeypatch.setattr(cpu_conv, "_COL_CHUNK_BYTES", 400)  # a few positions per tile, a ragged last one
    return request.param


@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", CONV_CASES)
def test_conv2d_matches_loop_reference(xs, ws, stride, pads, dil, groups, conv_path):
    x = _rand(*xs)
    w = _rand(ws[0], xs[1] // groups, ws[1], ws[2])
    b = _rand(ws[0])
    y = cpu.conv2d(x, w, b, stride, pads, dil, groups)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, stride, pads, dil, groups), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", CONV_CASES)
def test_conv2d_gradients_are_adjoints_of_forward(xs, ws, stride, pads, dil, groups, conv_path):
    x = _rand(*xs)
    w = _rand(ws[0], xs[1] // groups, ws[1], ws[2])
    y = cpu.conv2d(x, w, None, stride, pads, dil, groups)
    gy = _rand(*y.shape)
    gx = cpu.conv2d_grad_input(gy, w, xs[2:], stride, pads, dil, groups)
    gw = cpu.conv2d_grad_weight(x, gy, ws[1:], stride, pads, dil, groups)
    assert gx.shape == x.shape and gw.shape == w.shape
    # conv is bilinear: <conv(x, w), gy> = <x, gx> = <w, gw>
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(x, gx), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(w, gw), rtol=1e-10)
    # and per-element, against the numerically exact linear map
    e = np.zeros_like(x)
    e.flat[7] = 1.0
    np.testing.assert_allclose(gx.flat[7], np.vdot(cpu.conv2d(e, w, None, stride, pads, dil, groups), gy))


def test_depthwise_tap_path_is_taken_where_it_should_be(monkeypatch, kernel_impl):
    x = _rand(3, 6, 10, 9, dtype=np.float32)
    w = _rand(6, 1, 5, 5, dtype=np.float32)
    b = _rand(6, dtype=np.float32)
    args = ((1, 1), ((2, 2), (2, 2)), (1, 1), 6)
    calls = []
    real = cpu_depthwise.stride1
    monkeypatch.setattr(cpu_depthwise, "stride1", lambda *a: calls.append(1) or real(*a))
    y = cpu.conv2d(x, w, b, *args)  # inference: the numpy tap path, or the compiled depthwise kernel
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert y.dtype == np.float32
    if kernel_impl == "compiled":
        # the compiled kernel takes every depthwise conv (any stride), forward and both gradients
        gy = _rand(*y.shape, dtype=np.float32)
        gx, gw = cpu.conv2d_backward(x, gy, w, w.shape, x.shape[2:], *args, None, True, True)
        assert calls == [] and gx.shape == x.shape and gw.shape == w.shape
        return
    assert calls == [1]
    # training a small conv: the wide columns are kept for the weight gradient instead
    _, columns = cpu.conv2d(x, w, b, *args, keep_columns=True)
    assert calls == [1] and columns is not None
    # training where no columns would be kept: the tap path, and the weight gradient rebuilds from x
    monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
    y2, columns = cpu.conv2d(x, w, b, *args, keep_columns=True)
    assert calls == [1, 1] and columns is None
    gy = _rand(*y2.shape, dtype=np.float32)
    gw = cpu.conv2d_grad_weight(x, gy, (5, 5), *args, columns=columns)
    np.testing.assert_allclose(np.vdot(y2 - b.reshape(1, 6, 1, 1), gy), np.vdot(w, gw), rtol=1e-4)  # adjoint
    cpu.conv2d(x, w, b, (2, 2), ((2, 2), (2, 2)), (1, 1), 6)  # strided: the column path
    cpu.conv2d(x, w, b, (1, 1), ((4, 4), (4, 4)), (2, 2), 6)  # dilated: the column path
    assert calls == [1, 1]


def test_conv2d_chunking_gives_same_result_as_one_chunk(monkeypatch):
    x = _rand(5, 3, 9, 9, dtype=np.float32)
    w = _rand(4, 3, 3, 3, dtype=np.float32)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    whole = cpu.conv2d(x, w, None, *args)
    gy = _rand(*whole.shape, dtype=np.float32)
    whole_gx = cpu.conv2d_grad_input(gy, w, (9, 9), *args)
    whole_gw = cpu.conv2d_grad_weight(x, gy, (3, 3), *args)
    monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
    monkeypatch.setattr(cpu_conv, "_COL_CHUNK_BYTES", 2 * 27 * 81 * 4)  # two images per chunk, a ragged last
    monkeypatch.setattr(cpu_conv, "_GEMM_MIN_COLUMNS", 1)
    np.testing.assert_allclose(cpu.conv2d(x, w, None, *args), whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cpu.conv2d_grad_input(gy, w, (9, 9), *args), whole_gx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cpu.conv2d_grad_weight(x, gy, (3, 3), *args), whole_gw, rtol=1e-5, atol=1e-5)


WIDE_CASES = [
    # LeNet-5's two convolutions (batch 4), then stride, dilation and groups on wide columns
    ((4, 1, 28, 28), (6, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),
    ((4, 6, 14, 14), (16, 5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((2, 3, 13, 12), (4, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 4, 12, 11), (6, 3, 2), (3, 2), ((0, 2), (1, 0)), (2, 3), 2),
]


@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", WIDE_CASES)
def test_wide_columns_match_reference_and_kept_columns_give_the_weight_gradient(xs, ws, stride, pads, dil, groups,
                                                                             monkeypatch):  # fmt: skip
    monkeypatch.setattr(cpu_wide, "_DIRECT_MAX_ROWS", 0)  # these layers' GEMM path (tests/kernels/test_direct_conv.py)
    x = _rand(*xs)
    w = _rand(ws[0], xs[1] // groups, ws[1], ws[2])
    b = _rand(ws[0])
    oh = (xs[2] + sum(pads[0]) - dil[0] * (ws[1] - 1) - 1) // stride[0] + 1
    ow = (xs[3] + sum(pads[1]) - dil[1] * (ws[2] - 1) - 1) // stride[1] + 1
    (_, pw), _ = cpu_wide.geometry(xs[2:], ws[1:], stride, pads, dil, (oh, ow))
    assert cpu_conv._use_wide(xs[0], xs[1] * ws[1] * ws[2], ws[1:], pads, (oh, ow), pw, x.itemsize)
    y, columns = cpu.conv2d(x, w, b, stride, pads, dil, groups, keep_columns=True)
    assert columns is not None and columns.shape == (xs[0], xs[1] * ws[1] * ws[2], oh * pw)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, stride, pads, dil, groups), rtol=1e-10, atol=1e-10)
    gy = _rand(*y.shape)
    gw = cpu.conv2d_grad_weight(x, gy, ws[1:], stride, pads, dil, groups)
    np.testing.assert_allclose(cpu.conv2d_grad_weight(None, gy, ws[1:], stride, pads, dil, groups, columns), gw)
    gx = cpu.conv2d_grad_input(gy, w, xs[2:], stride, pads, dil, groups)
    y0 = cpu.conv2d(x, w, None, stride, pads, dil, groups)
    np.testing.assert_allclose(np.vdot(y0, gy), np.vdot(x, gx), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y0, gy), np.vdot(w, gw), rtol=1e-10)


def test_wide_and_chunked_paths_agree_in_float32(monkeypatch):
    monkeypatch.setattr(cpu_wide, "_DIRECT_MAX_ROWS", 0)  # the two GEMM paths (the direct one: test_direct_conv.py)
    x = _rand(8, 6, 14, 14, dtype=np.float32)
    w = _rand(16, 6, 5, 5, dtype=np.float32)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    y, columns = cpu.conv2d(x, w, None, *args, keep_columns=True)
    gy = _rand(*y.shape, dtype=np.float32)
    results = [y, cpu.conv2d_grad_input(gy, w, (14, 14), *args), cpu.conv2d_grad_weight(x, gy, (5, 5), *args)]
    assert columns is not None and all(r.dtype == np.float32 for r in results)
    monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
    y2, no_columns = cpu.conv2d(x, w, None, *args, keep_columns=True)
    assert no_columns is None
    chunked = [y2, cpu.conv2d_grad_input(gy, w, (14, 14), *args), cpu.conv2d_grad_weight(x, gy, (5, 5), *args)]
    for fast, slow in zip(results, chunked):
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", ["wide", "chunked", "direct"])
def test_conv_results_survive_later_calls_and_threads(path, monkeypatch):
    # temporaries live in per-thread scratch buffers: what a kernel returns must not be one of them
    if path != "direct":
        monkeypatch.setattr(cpu_wide, "_DIRECT_MAX_ROWS", 0)
    if path == "chunked":
        monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
    import threading

    args = ((1, 1), ((2, 2), (2, 2)), (1, 1), 1)
    xs = [_rand(4, 3, 12, 12, dtype=np.float32) for _ in range(4)]
    w = _rand(5, 3, 5, 5, dtype=np.float32)

    def run(x):
        y = cpu.conv2d(x, w, None, *args)
        return y, cpu.conv2d_grad_input(y, w, (12, 12), *args), cpu.conv2d_grad_weight(x, y, (5, 5), *args)

    serial = [run(x) for x in xs]
    first = [r.copy() for r in serial[0]]
    for got, want in zip(serial[0], first):
        np.testing.assert_array_equal(got, want)
    threaded = [None] * len(xs)

    def work(i):
        for _ in range(20):
            threaded[i] = run(xs[i])

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for got, want in zip(threaded, serial):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_conv2d_keeps_float32():
    x = _rand(2, 3, 6, 6, dtype=np.float32)
    w = _rand(4, 3, 3, 3, dtype=np.float32)
    y = cpu.conv2d(x, w, _rand(4, dtype=np.float32), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert y.dtype == np.float32
    assert cpu.conv2d_grad_input(y, w, (6, 6), (1, 1), ((1, 1), (1, 1)), (1, 1), 1).dtype == np.float32
    assert cpu.conv2d_grad_weight(x, y, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1).dtype == np.float32


def test_im2col_layout_and_col2im_adjoint():
    x = _rand(2, 3, 5, 6)
    kernel, stride, pads, dil = (2, 3), (1, 2), ((1, 0), (1, 1)), (2, 1)
    col = cpu.im2col(x, kernel, stride, pads, dil)
    oh = (5 + 1 - 2 - 1) // 1 + 1
    ow = (6 + 2 - 2 - 1) // 2 + 1
    assert col.shape == (3 * 2 * 3, 2 * oh * ow)
    # row (c, ky, kx), column (n, i, j) is the padded pixel that kernel tap sees
    xp = np.pad(x, ((0, 0), (0, 0), (1, 0), (1, 1)))
    c, ky, kx, n, i, j = 2, 1, 2, 1, 1, 2
    assert col[c * 6 + ky * 3 + kx, n * oh * ow + i * ow + j] == xp[n, c, i + ky * 2, j * 2 + kx]
    g = _rand(*col.shape)
    np.testing.assert_allclose(np.vdot(col, g), np.vdot(x, cpu.col2im(g, x.shape, kernel, stride, pads, dil)))


POOL_CASES = [
    # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (2, 1), (1, 0), (2, 1), True),
    ((2, 3), (3, 2), (1, 1), (1, 2), False),
    ((3, 3), (3, 3), (0, 0), (1, 1), True),
]


@pytest.mark.parametrize("kernel, stride, padding, dil, ceil", POOL_CASES)
def test_max_pool2d_values_indices_and_gradient(kernel, stride, padding, dil, ceil):
    x = _tie_free(2, 3, 9, 8)
    y, arg = cpu.max_pool2d(x, kernel, stride, padding, dil, ceil, with_argmax=True)
    want, want_idx = ref.max_pool2d(x, kernel, stride, padding, dil, ceil)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(cpu.max_pool2d_indices(arg, (9, 8), kernel, stride, padding, dil), want_idx)
    y_fast, none = cpu.max_pool2d(x, kernel, stride, padding, dil, ceil, with_argmax=False)
    assert none is None
    np.testing.assert_array_equal(y_fast, want)
    gy = _rand(*y.shape)
    gx = cpu.max_pool2d_backward(gy, arg, (9, 8), kernel, stride, padding, dil, ceil)
    expected = np.zeros(2 * 3 * 9 * 8)
    flat = want_idx + (np.arange(6) * 72).reshape(2, 3, 1, 1)
    for k, v in zip(flat.ravel(), gy.ravel()):
        expected[k] += v
    np.testing.assert_allclose(gx.ravel(), expected)


@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (2, 3, 9, 7)])
def test_pairwise_2x2_max_pool_matches_general_loop_with_ties(shape, monkeypatch):
    # values from {0, 1, 2}: most windows hold ties, and the first maximum must win in both paths
    x = RNG.integers(0, 3, size=shape).astype(np.float32)
    args = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    y, arg = cpu.max_pool2d(x, *args, with_argmax=True)
    gy = _rand(*y.shape, dtype=np.float32)
    gx = cpu.max_pool2d_backward(gy, arg, shape[2:], *args)
    monkeypatch.setattr(cpu_pool, "_is_pairwise_pool", lambda *a: False)
    y_loop, arg_loop = cpu.max_pool2d(x, *args, with_argmax=True)
    np.testing.assert_array_equal(y, y_loop)
    np.testing.assert_array_equal(arg, arg_loop)
    np.testing.assert_array_equal(gx, cpu.max_pool2d_backward(gy, arg_loop, shape[2:], *args))
    assert gx.dtype == np.float32 and arg.dtype == np.uint8


def test_max_pool2d_ties_pick_first_position_and_nan_propagates():
    x = np.zeros((1, 1, 2, 2), dtype=np.float32)
    y, arg = cpu.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False, True)
    assert y[0, 0, 0, 0] == 0 and arg[0, 0, 0, 0] == 0
    x[0, 0, 1, 0] = np.nan
    assert np.isnan(cpu.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False, False)[0]).all()


@pytest.mark.parametrize("kernel, stride, padding, dil, ceil", [c for c in POOL_CASES if c[3] == (1, 1)])
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("divisor", [None, 5])
def test_avg_pool2d_matches_reference_and_backward_is_adjoint(kernel, stride, padding, dil, ceil, include_pad, divisor):
    x = _rand(2, 3, 9, 8)
    y = cpu.avg_pool2d(x, kernel, stride, padding, ceil, include_pad, divisor)
    np.testing.assert_allclose(y, ref.avg_pool2d(x, kernel, stride, padding, ceil, include_pad, divisor))
    gy = _rand(*y.shape)
    gx = cpu.avg_pool2d_backward(gy, (9, 8), kernel, stride, padding, ceil, include_pad, divisor)
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(x, gx))


@pytest.mark.parametrize(
    "in_hw, out_hw", [((8, 6), (4, 3)), ((7, 5), (3, 2)), ((5, 9), (5, 4)), ((6, 6), (1, 1)), ((3, 4), (5, 7))]
)
def test_adaptive_pools_match_reference(in_hw, out_hw):
    x = _tie_free(2, 3, *in_hw)
    y = cpu.adaptive_avg_pool2d(x, out_hw)
    np.testing.assert_allclose(y, ref.adaptive_pool2d(x, out_hw, np.mean))
    gy = _rand(*y.shape)
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(x, cpu.adaptive_avg_pool2d_backward(gy, in_hw)))
    ym, idx = cpu.adaptive_max_pool2d(x, out_hw)
    np.testing.assert_array_equal(ym, ref.adaptive_pool2d(x, out_hw, np.max))
    picked = np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1), 2)
    np.testing.assert_array_equal(picked, ym.reshape(2, 3, -1))
    gx = cpu.adaptive_max_pool2d_backward(gy, idx, in_hw)
    np.testing.assert_allclose(gx.sum(), gy.sum())
    np.testing.assert_allclose(np.vdot(ym, gy), np.vdot(x, gx))


@pytest.mark.parametrize(
    "in_hw, out_hw", [((4, 5), (8, 10)), ((7, 6), (3, 4)), ((5, 5), (5, 5)), ((3, 4), (1, 1)), ((6, 4), (13, 9))]
)
@pytest.mark.parametrize("align", [True, False])
def test_bilinear_matches_reference_and_backward_is_adjoint(in_hw, out_hw, align):
    x = _rand(2, 3, *in_hw)
    y = cpu.upsample_bilinear2d(x, out_hw, align, (None, None))
    np.testing.assert_allclose(y, ref.bilinear(x, out_hw, align), atol=1e-12)
    gy = _rand(*y.shape)
    gx = cpu.upsample_bilinear2d_backward(gy, in_hw, align, (None, None))
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(x, gx))


@pytest.mark.parametrize("in_hw, out_hw", [((4, 5), (8, 10)), ((7, 6), (3, 4)), ((5, 3), (7, 8))])
def test_nearest_picks_floor_of_scaled_index_and_backward_is_adjoint(in_hw, out_hw):
    x = _rand(2, 3, *in_hw)
    y = cpu.upsample_nearest2d(x, out_hw, (None, None))
    ih = [min(int(i * in_hw[0] / out_hw[0]), in_hw[0] - 1) for i in range(out_hw[0])]
    iw = [min(int(j * in_hw[1] / out_hw[1]), in_hw[1] - 1) for j in range(out_hw[1])]
    np.testing.assert_array_equal(y, x[:, :, ih][:, :, :, iw])
    gy = _rand(*y.shape)
    np.testing.assert_allclose(np.vdot(y, gy), np.vdot(x, cpu.upsample_nearest2d_backward(gy, in_hw, (None, None))))


def test_dispatcher_picks_cpu_for_numpy_without_importing_cupy():
    import sys

    from hubkit import kernels

    assert kernels.kernels_for(np.zeros(1)) is cpu
    y = kernels.conv2d(_rand(1, 1, 3, 3), _rand(1, 1, 1, 1), None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert y.shape == (1, 1, 3, 3)
    assert "hubkit.kernels.cuda" not in sys.modules or "cupy" in sys.modules
