"""The compiled CPU kernels (numba, ``hubkit[numba]``) against the numpy kernels they replace, on odd shapes.

Each test computes the same thing with ``_jit`` turned off (the numpy reference) and on, and compares; the
parity tests compare the compiled path with PyTorch. Tests of the compiled path skip only when numba is not
installed. tests/kernels/test_cpu_kernels.py runs its whole suite on both paths as well.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from hubkit.kernels import _jit, _malloc, cpu, cpu_conv, cpu_depthwise, cpu_elementwise, cpu_norm
from hubkit.ops.elementwise import erf_array

RNG = np.random.default_rng(7)
needs_numba = pytest.mark.skipif(not _jit.available(), reason="numba is not installed: no compiled kernels to test")


@pytest.fixture(autouse=True)
def small_jobs_compiled_too(monkeypatch):
    """The compiled kernels normally skip jobs under ``_jit.MIN_WORK`` elements; these tests use small shapes."""
    monkeypatch.setattr(_jit, "MIN_WORK", 0)


def _both(monkeypatch, fn):
    """``fn()`` with the numpy kernels, then with the compiled ones: ``(reference, compiled)``."""
    monkeypatch.setattr(_jit, "_enabled", False)
    want = fn()
    monkeypatch.setattr(_jit, "_enabled", True)
    assert _jit.compiled() is not None
    return want, fn()


def _both_on_threads(monkeypatch, fn, threads):
    """:func:`_both` with hubkit's kernels on ``threads`` threads."""
    import hubkit

    before = hubkit.get_num_threads()
    hubkit.set_num_threads(threads)
    try:
        return _both(monkeypatch, fn)
    finally:
        hubkit.set_num_threads(before)


def _rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _tie_free(*shape, dtype=np.float32):
    return RNG.permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape).astype(dtype)


def _noncontiguous(a):
    """The same values as ``a`` in a non-contiguous array (a transposed copy, transposed back)."""
    b = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    out = np.swapaxes(b, -1, -2)
    assert not out.flags.c_contiguous and np.array_equal(out, a, equal_nan=True)
    return out


def test_compiled_kernels_follow_the_switch(monkeypatch):
    monkeypatch.setattr(_jit, "_enabled", False)
    assert _jit.compiled() is None
    monkeypatch.setattr(_jit, "_enabled", True)
    monkeypatch.setattr(_jit, "MIN_WORK", 100)
    assert _jit.compiled(99) is None and (_jit.compiled(100) is not None) == _jit.available()
    monkeypatch.setattr(_jit, "_enabled", None)
    monkeypatch.setenv("HUBKIT_NUMBA", "0")
    assert not _jit.enabled() and _jit.compiled() is None
    monkeypatch.setattr(_jit, "_enabled", None)
    monkeypatch.setenv("HUBKIT_NUMBA", "1")
    assert _jit.enabled()
    assert (_jit.compiled() is not None) == _jit.available()


def test_importing_hubkit_or_running_small_jobs_does_not_import_numba():
    code = (
        "import sys, hubkit, hubkit.nn.functional as F, hubkit.kernels.cpu\n"
        "x = hubkit.randn(2, 3, 8, 8, requires_grad=True)\n"
        "F.max_pool2d(F.relu(F.batch_norm(x, None, None, training=True)), 2).sum().backward()\n"
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_allocator_tuning_is_applied_once_and_can_be_turned_off(monkeypatch):
    tuned = _malloc.tune()
    assert _malloc.tune() == tuned  # idempotent
    monkeypatch.setattr(_malloc, "_done", False)
    monkeypatch.setenv("HUBKIT_MALLOC_TUNING", "0")
    assert _malloc.tune() is False


def test_full_width_vectors_are_asked_for_only_on_avx512_hosts():
    host = {"avx2": True, "avx512f": True, "avx512bw": True, "avx512vl": True, "sse2": True, "amx-tile": False}
    features = _jit.full_width_features(host)
    assert features is not None and features.endswith(",-prefer-256-bit")
    assert set(features.split(",")[:-1]) == {"+avx2", "+avx512f", "+avx512bw", "+avx512vl", "+sse2", "-amx-tile"}
    assert _jit.full_width_features({**host, "avx512bw": False}) is None
    assert _jit.full_width_features({"avx2": True, "fma": True}) is None


_FEATURES_SCRIPT = (
    "from hubkit.kernels import _jit\n"
    "assert _jit.compiled() is not None\n"
    "from numba.core import config\n"
    "print(config.CPU_FEATURES)\n"
)


@needs_numba
@pytest.mark.parametrize("user_choice", [None, "NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME"])
def test_kernels_compile_without_the_256_bit_preference_on_avx512_hosts_unless_the_user_chose(user_choice):
    import llvmlite.binding as llvm

    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME")}
    if user_choice == "NUMBA_CPU_FEATURES":
        env[user_choice] = "+sse2,+avx2"
    elif user_choice == "NUMBA_CPU_NAME":
        env[user_choice] = "generic"
    out = subprocess.run([sys.executable, "-c", _FEATURES_SCRIPT], capture_output=True, text=True, timeout=300,
                         env=env, check=True).stdout.strip()  # fmt: skip
    expected = _jit.full_width_features(dict(llvm.get_host_cpu_features()))
    if user_choice == "NUMBA_CPU_FEATURES":
        assert out == "+sse2,+avx2"
    elif user_choice == "NUMBA_CPU_NAME":
        assert "prefer-256-bit" not in out  # numba's own choice for a named CPU
    elif expected is None:
        assert out == "None"
    else:
        assert out == expected

# ---------------------------------------------------------------- max pooling

POOLS = [
    # (N, C, H, W), kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 9, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),  # the pairwise kernel, odd height
    ((3, 2, 6, 11), (2, 2), (2, 2), (0, 0), (1, 1), False),  # the pairwise kernel, odd width
    ((1, 2, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), True),  # ceil mode overhangs: the general kernel
    ((2, 3, 11, 10), (3, 3), (2, 2), (1, 1), (1, 1), False),  # ResNet's stem pool
    ((2, 2, 10, 9), (3, 2), (2, 1), (1, 0), (2, 1), True),
    ((1, 4, 8, 8), (2, 3), (3, 2), (1, 1), (1, 2), False),
    ((3, 1, 6, 6), (3, 3), (1, 1), (1, 1), (1, 1), False),
]


@needs_numba
@pytest.mark.parametrize("shape, kernel, stride, padding, dil, ceil", POOLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_max_pool_compiled_matches_numpy(shape, kernel, stride, padding, dil, ceil, dtype, layout, monkeypatch):
    x = _tie_free(*shape, dtype=dtype)
    if layout == "transposed":
        x = _noncontiguous(x)
    args = (kernel, stride, padding, dil, ceil)

    def run():
        y, arg = cpu.max_pool2d(x, *args, with_argmax=True)
        y_only, _ = cpu.max_pool2d(x, *args, with_argmax=False)
        gy = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
        return y, y_only, arg, cpu.max_pool2d_backward(gy, arg, shape[2:], *args)

    (*want, want_gx), (*got, got_gx) = _both(monkeypatch, run)
    for w_, g_ in zip(want, got):  # values and winners: exactly the same
        assert g_.dtype == w_.dtype and g_.shape == w_.shape
        np.testing.assert_array_equal(g_, w_)
    # overlapping windows add into a pixel in another order
    assert got_gx.dtype == want_gx.dtype
    np.testing.assert_allclose(got_gx, want_gx, rtol=1e-6, atol=1e-6 if dtype == np.float32 else 1e-14)


@needs_numba
@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))])
def test_compiled_max_pool_first_maximum_wins_ties(kernel, stride, padding, monkeypatch):
    x = RNG.integers(0, 3, size=(2, 3, 9, 9)).astype(np.float32)  # many ties
    want, got = _both(monkeypatch, lambda: cpu.max_pool2d(x, kernel, stride, padding, (1, 1), False, True))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@needs_numba
def test_compiled_max_pool_propagates_nan_and_routes_all_minus_inf_windows_to_a_real_pixel(monkeypatch):
    monkeypatch.setattr(_jit, "_enabled", True)
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 1, 2] = np.nan
    y, arg = cpu.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False, True)
    assert np.isnan(y[0, 0, 0, 1]) and arg[0, 0, 0, 1] == 2 and not np.isnan(y[0, 0, 0, 0])
    y3, _ = cpu.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), False, True)
    assert np.isnan(y3[0, 0, 0, 1]) and np.isnan(y3[0, 0, 1, 1]) and y3[0, 0, 0, 0] == 0
    # a window whose real pixels are all -inf: the winner is a real pixel, never the padding
    x = np.full((1, 1, 3, 3), -np.inf, dtype=np.float32)
    y, arg = cpu.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), False, True)
    gx = cpu.max_pool2d_backward(np.ones_like(y), arg, (3, 3), (3, 3), (2, 2), (1, 1), (1, 1), False)
    assert np.all(y == -np.inf) and gx.sum() == y.size


# ---------------------------------------------------------------- batch normalization


def _bn_case(x, training, affine, keep):
    c = x.shape[1]
    w = (RNG.uniform(0.5, 1.5, c).astype(x.dtype)) if affine else None
    b = _rand(c, dtype=x.dtype) if affine else None
    rm, rv = _rand(c, dtype=x.dtype) * 0.1, RNG.uniform(0.5, 2, c).astype(x.dtype)
    gy = _rand(*x.shape, dtype=x.dtype)

    def run():
        m, v = rm.copy(), rv.copy()
        y, saved, stats = cpu.batch_norm_forward(x, w, b, m, v, training, 0.1, 1e-5, keep)
        grads = cpu.batch_norm_backward(gy, saved, stats, w, training, True, affine, affine) if keep else ()
        return (y, m, v, *[g for g in grads if g is not None])

    return run


@needs_numba
@needs_numba
@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (1, 6, 9, 4), (3, 2, 11), (2, 3, 2, 3, 4), (64, 6, 28, 28)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_channel_sums_compiled_match_numpy(shape, dtype, layout, monkeypatch):
    g = _rand(*shape, dtype=dtype) + 3  # an offset, so float32 rounding in a naive sum would show
    if layout == "transposed":
        g = _noncontiguous(g)
    want, got = _both(monkeypatch, lambda: cpu_norm.channel_sum(g))
    assert got.dtype == want.dtype == dtype and got.shape == (shape[1],)
    exact = g.astype(np.float64).sum(axis=(0,) + tuple(range(2, g.ndim)))
    np.testing.assert_allclose(got, exact, rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(want, exact, rtol=1e-5 if dtype == np.float32 else 1e-12)


@needs_numba
def test_channel_sums_do_not_depend_on_the_thread_count(monkeypatch):
    import hubkit

    g = _rand(16, 12, 20, 20)
    monkeypatch.setattr(_jit, "_enabled", True)
    before = hubkit.get_num_threads()
    try:
        hubkit.set_num_threads(1)
        one = cpu_norm.channel_sum(g)
        hubkit.set_num_threads(2)
        two = cpu_norm.channel_sum(g)
    finally:
        hubkit.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (1, 6, 9, 4), (7, 5), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_compiled_matches_numpy(shape, training, affine, dtype, monkeypatch):
    x = _rand(*shape, dtype=dtype) * 3 + 1
    want, got = _both(monkeypatch, _bn_case(x, training, affine, keep=True))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for w_, g_ in zip(want, got):
        assert g_.dtype == w_.dtype
        np.testing.assert_allclose(g_, w_, rtol=tol, atol=tol)


@needs_numba
def test_batch_norm_compiled_takes_non_contiguous_input_and_matches_the_generic_reference(monkeypatch):
    from hubkit.kernels import generic

    x = _noncontiguous(_rand(3, 4, 6, 5) * 2)
    monkeypatch.setattr(_jit, "_enabled", True)
    got = _bn_case(x, True, True, keep=True)()
    c = x.shape[1]
    w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
    y, xhat, inv = generic.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, True)
    y2, saved, stats = cpu_norm.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, True)
    np.testing.assert_allclose(y2, y, rtol=1e-5, atol=1e-5)
    gy = _rand(*x.shape)
    for a, b_ in zip(cpu_norm.batch_norm_backward(gy, saved, stats, w, True, True, True, True),
                     generic.batch_norm_backward(gy, xhat, inv, w, True, True, True, True)):  # fmt: skip
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-5)
    assert len(got) == 6


# ---------------------------------------------------------------- activations


@needs_numba
@pytest.mark.parametrize("lo, hi", [(0.0, np.inf), (0.0, 6.0), (-1.0, 1.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamp_compiled_matches_numpy(lo, hi, dtype, monkeypatch):
    x = (_rand(3, 5, 7, dtype=dtype) * 4)
    x.flat[:6] = [np.nan, np.inf, -np.inf, lo, hi if np.isfinite(hi) else 1e30, -0.0]
    xt = _noncontiguous(x)
    gy = _rand(3, 5, 7, dtype=dtype)

    def run():
        y = cpu_elementwise.clamp(xt, lo, hi)
        return y, cpu_elementwise.clamp_backward(gy, y, lo, hi)

    for want, got in zip(*_both(monkeypatch, run)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@needs_numba
def test_gelu_compiled_float32_is_within_float32_accuracy_of_the_erf_series(monkeypatch):
    x = (_rand(200_003) * 4).astype(np.float32)
    x[:8] = [0, -0.0, 1e-30, -40, 40, 5.66, -5.66, np.nan]
    (y_ref, cdf_ref), (y, cdf) = _both(monkeypatch, lambda: cpu_elementwise.gelu(x, erf_array))
    exact = x.astype(np.float64) * 0.5 * (1 + erf_array(x.astype(np.float64) / np.sqrt(2)))
    assert np.isnan(y[7]) and np.isnan(y_ref[7])
    np.testing.assert_allclose(y[:7], exact[:7], atol=1e-6)
    # Phi within 1.6e-7 of exact (measured 1.5e-7: the fit's error plus Estrin's rounding); y = x * Phi then
    # carries |x| times that near the clamp at |x| = 5.66, as any float32 GELU does (torch's is off by 3e-7 near
    # x = -5)
    phi = 0.5 * (1 + erf_array(x[8:].astype(np.float64) / np.sqrt(2)))
    np.testing.assert_allclose(cdf[8:], phi, rtol=0, atol=1.6e-7)
    np.testing.assert_allclose(y[8:], exact[8:], rtol=1e-6, atol=8e-7)
    np.testing.assert_allclose(cdf[8:], cdf_ref[8:], atol=3e-7)
    # backward needs Phi only when a gradient is wanted
    monkeypatch.setattr(_jit, "_enabled", True)
    y2, none = cpu_elementwise.gelu(x, erf_array, want_cdf=False)
    assert none is None and np.array_equal(y2[8:], y[8:])


def test_gelu_float64_keeps_the_precise_series(monkeypatch):
    x = _rand(1000, dtype=np.float64) * 3
    monkeypatch.setattr(_jit, "_enabled", True)
    y, cdf = cpu_elementwise.gelu(x, erf_array)
    np.testing.assert_allclose(cdf, 0.5 * (1 + erf_array(x / np.sqrt(2))), rtol=1e-15, atol=1e-15)


# ---------------------------------------------------------------- depthwise convolution

DEPTHWISE = [
    # (N, C, H, W), (KH, KW), stride, pads, dilation
    ((2, 5, 17, 19), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    ((1, 3, 20, 21), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1)),  # batch 1, odd sizes
    ((2, 4, 19, 18), (5, 5), (2, 1), ((2, 1), (0, 2)), (1, 1)),  # asymmetric padding and stride
    ((2, 3, 22, 17), (3, 3), (1, 2), ((2, 2), (2, 2)), (2, 2)),  # dilated
    ((1, 2, 16, 16), (7, 7), (1, 1), ((3, 3), (3, 3)), (1, 1)),  # ConvNeXt's kernel
    ((3, 2, 12, 13), (3, 3), (3, 3), ((0, 0), (1, 1)), (1, 1)),  # rows no window reaches
]


@needs_numba
@pytest.mark.parametrize("xs, kernel, stride, pads, dil", DEPTHWISE)
@pytest.mark.parametrize("layout", ["planes", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_compiled_matches_numpy(xs, kernel, stride, pads, dil, layout, dtype, monkeypatch):
    """Both compiled kernels (flat phase planes for large maps, channels-last for small ones) against the
    numpy path: the forward through im2col for strides/dilations the tap path does not take."""
    monkeypatch.setattr(cpu_depthwise, "_CHANNELS_LAST_MAX_PIXELS", 0 if layout == "planes" else 10**9)
    c = xs[1]
    x = _rand(*xs, dtype=dtype)
    w = _rand(c, 1, *kernel, dtype=dtype)
    b = _rand(c, dtype=dtype)
    args = (stride, pads, dil, c)

    def run():
        y = cpu_conv.conv2d(x, w, b, *args)
        gy = np.cos(np.arange(y.size)).reshape(y.shape).astype(dtype)
        gx, gw = cpu_conv.conv2d_backward(x, gy, w, w.shape, xs[2:], *args, None, True, True)
        return y, gx, gw, cpu_conv.conv2d_grad_input(_noncontiguous(gy), w, xs[2:], *args)

    tol = 2e-5 if dtype == np.float32 else 1e-11
    for want, got in zip(*_both(monkeypatch, run)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# ---------------------------------------------------------------- the wide path's shared gradient


@pytest.mark.parametrize("compiled", [False, True])
def test_conv2d_backward_equals_the_two_gradient_kernels(compiled, monkeypatch):
    if compiled and not _jit.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_jit, "_enabled", compiled)
    for xs, ws, stride, pads in [((4, 1, 12, 12), (6, 5, 5), (1, 1), ((2, 2), (2, 2))),
                                 ((3, 6, 10, 9), (16, 3, 3), (2, 1), ((1, 0), (0, 1)))]:  # fmt: skip
        x, w = _rand(*xs), _rand(ws[0], xs[1], *ws[1:])
        args = (stride, pads, (1, 1), 1)
        y, columns = cpu.conv2d(x, w, None, *args, keep_columns=True)
        gy = _rand(*y.shape)
        gx, gw = cpu.conv2d_backward(x, gy, w, w.shape, xs[2:], *args, columns, True, True)
        np.testing.assert_array_equal(gx, cpu.conv2d_grad_input(gy, w, xs[2:], *args))
        np.testing.assert_array_equal(gw, cpu.conv2d_grad_weight(x, gy, ws[1:], *args, columns=columns))
        only_w = cpu.conv2d_backward(x, gy, None, w.shape, xs[2:], *args, columns, False, True)
        assert only_w[0] is None and np.array_equal(only_w[1], gw)


# ---------------------------------------------------------------- PyTorch


@pytest.mark.parity
@needs_numba
@pytest.mark.parametrize("xs, kernel, stride, pads, dil", DEPTHWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_depthwise_matches_torch(xs, kernel, stride, pads, dil, dtype, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(_jit, "_enabled", True)
    c = xs[1]
    x, w = _rand(*xs, dtype=dtype), _rand(c, 1, *kernel, dtype=dtype)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    # torch's conv2d pads symmetrically: uneven padding is an explicit F.pad (left, right, top, bottom) first
    (top, bottom), (left, right) = pads
    xp = torch.nn.functional.pad(xt, (left, right, top, bottom))
    yt = torch.nn.functional.conv2d(xp, wt, None, stride, 0, dil, c)
    gy = np.cos(np.arange(yt.numel())).reshape(yt.shape).astype(dtype)
    yt.backward(torch.from_numpy(gy))
    y = cpu.conv2d(x, w, None, stride, pads, dil, c)
    gx, gw = cpu.conv2d_backward(x, gy, w, w.shape, xs[2:], stride, pads, dil, c, None, True, True)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for got, want in ((y, yt), (gx, xt.grad), (gw, wt.grad)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parity
@needs_numba
def test_compiled_pooling_norm_and_activations_match_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(_jit, "_enabled", True)
    x = _rand(2, 4, 13, 11) * 2
    x[0, 1, 3, 4] = np.nan
    y, _ = cpu.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), False, True)
    yt = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1)
    np.testing.assert_array_equal(y, yt.numpy())  # NaN where torch has NaN
    x = _rand(3, 4, 6, 5) * 2 + 1
    bn = torch.nn.BatchNorm2d(4)
    out, saved, stats = cpu.batch_norm_forward(x, bn.weight.detach().numpy(), bn.bias.detach().numpy(),
                                               np.zeros(4, np.float32), np.ones(4, np.float32), True, 0.1, 1e-5,
                                               True)  # fmt: skip
    np.testing.assert_allclose(out, bn(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    x = _rand(5000) * 4
    y, _ = cpu_elementwise.gelu(x, erf_array)
    np.testing.assert_allclose(y, torch.nn.functional.gelu(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=2e-6)
    np.testing.assert_array_equal(cpu_elementwise.clamp(x, 0.0, 6.0), torch.nn.functional.relu6(torch.from_numpy(x)))


# ---------------------------------------------------------------- layer normalization


def _norm_paths_agree(monkeypatch, norm, x, w, b, training, tol):
    """``norm(x, w, b)`` (Tensors or None) on the numpy and the compiled kernels: outputs and, when ``training``,
    the gradients of x, w and b for one random output gradient agree within ``tol``, dtypes included."""
    import hubkit

    gy = _rand(*x.shape, dtype=x.dtype)

    def run():
        xt = hubkit.tensor(x, requires_grad=training)
        wt = None if w is None else hubkit.tensor(w, requires_grad=training)
        bt = None if b is None else hubkit.tensor(b, requires_grad=training)
        y = norm(xt, wt, bt)
        if not training:
            return [y.numpy()]
        y.backward(hubkit.tensor(gy))
        return [y.numpy(), xt.grad.numpy()] + [t.grad.numpy() for t in (wt, bt) if t is not None]

    want, got = _both(monkeypatch, run)
    assert len(got) == len(want)
    for g, r in zip(got, want):
        assert g.dtype == r.dtype
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


@needs_numba
@pytest.mark.parametrize("shape, k", [((3, 5, 384), 1), ((2, 7), 1), ((1, 1, 9), 1), ((4, 3, 5, 6), 2), ((2, 3, 4), 3)])
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_compiled_matches_numpy(shape, k, affine, training, dtype, monkeypatch):
    import hubkit.nn.functional as F

    x = _rand(*shape, dtype=dtype) * 3 + 2
    if min(shape[-2:]) > 1:
        x = _noncontiguous(x)
    norm = shape[len(shape) - k :]
    w = _rand(*norm, dtype=dtype) if affine in ("both", "weight") else None
    b = _rand(*norm, dtype=dtype) if affine in ("both", "bias") else None
    _norm_paths_agree(monkeypatch, lambda xt, wt, bt: F.layer_norm(xt, norm, wt, bt, eps=1e-5), x, w, b, training,
                      1e-5 if dtype == np.float32 else 1e-12)


@needs_numba
@pytest.mark.parametrize("shape, groups", [((2, 6, 5), 3), ((3, 4, 7, 5), 1), ((1, 8, 3, 3), 8), ((2, 4), 2),
                                           ((1, 512, 1000), 512)])
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_norm_compiled_matches_numpy(shape, groups, affine, training, dtype, monkeypatch):
    import hubkit.nn.functional as F

    x = _rand(*shape, dtype=dtype) * 3 - 1
    if min(shape[-2:]) > 1:
        x = _noncontiguous(x)
    c = shape[1]
    w = _rand(c, dtype=dtype) if affine in ("both", "weight") else None
    b = _rand(c, dtype=dtype) if affine in ("both", "bias") else None
    _norm_paths_agree(monkeypatch, lambda xt, wt, bt: F.group_norm(xt, groups, wt, bt, eps=1e-5), x, w, b, training,
                      2e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parity
@needs_numba
def test_compiled_group_norm_matches_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(_jit, "_enabled", True)
    x, w, b = _rand(2, 64, 300) * 2 + 1, _rand(64), _rand(64)
    y, _, _ = cpu_norm.group_norm_forward(x, 8, w, b, 1e-5, False)
    yt = torch.nn.functional.group_norm(torch.from_numpy(x), 8, torch.from_numpy(w), torch.from_numpy(b), 1e-5)
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)


@needs_numba
def test_layer_norm_compiled_leaves_nan_rows_nan_and_a_constant_row_at_the_bias(monkeypatch):
    x = np.ones((3, 8), np.float32)
    x[1, 2] = np.nan
    b = np.arange(8, dtype=np.float32)
    monkeypatch.setattr(_jit, "_enabled", True)
    y, _, _ = cpu_norm.layer_norm_forward(x, 1, None, b, 1e-5, False)
    assert np.isnan(y[1]).all()
    np.testing.assert_array_equal(y[0], b)
    np.testing.assert_array_equal(y[2], b)


@pytest.mark.parity
@needs_numba
def test_compiled_layer_norm_matches_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(_jit, "_enabled", True)
    x, w, b = _rand(4, 33, 384) * 2 + 1, _rand(384), _rand(384)
    y, _, _ = cpu_norm.layer_norm_forward(x, 1, w, b, 1e-12, False)
    yt = torch.nn.functional.layer_norm(torch.from_numpy(x), (384,), torch.from_numpy(w), torch.from_numpy(b), 1e-12)
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)


def test_numba_extra_is_declared_and_in_the_test_extra():
    """CI installs the test extra, so both kernel paths run there."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    extras = text[text.index("[project.optional-dependencies]") :]
    assert 'numba = ["numba>=' in extras
    test_extra = extras[extras.index("\ntest = [") : extras.index("]", extras.index("\ntest = ["))]
    assert '"numba>=' in test_extra


# ---------------------------------------------------------------- through the ops (autograd) on the compiled path


@needs_numba
@pytest.mark.parametrize("name", ["relu", "relu6", "hardtanh", "gelu", "max_pool", "batch_norm", "depthwise",
                                  "layer_norm", "group_norm"])
def test_ops_on_the_compiled_path_pass_gradcheck(name, monkeypatch):
    from opcheck import gradcheck, tie_free

    import hubkit.nn.functional as F

    monkeypatch.setattr(_jit, "_enabled", True)
    shape = (2, 3, 7, 6)

    def away(seed):  # distinct values, none on a kink (0, the clamp bounds)
        return (tie_free(shape, seed=seed) + 0.05) * 0.3

    fns = {
        "relu": (lambda x: F.relu(x), [away(1)]),
        "relu6": (lambda x: F.relu6(x * 4), [away(2)]),
        "hardtanh": (lambda x: F.hardtanh(x * 2, -0.5, 0.7), [away(3)]),
        "gelu": (lambda x: F.gelu(x), [tie_free(shape, seed=4) * 3]),
        "max_pool": (lambda x: F.max_pool2d(x, 3, 2, 1), [tie_free(shape, seed=5)]),
        "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                       [tie_free(shape, seed=6) * 2 + 1, np.linspace(0.5, 1.5, 3), np.linspace(-1, 1, 3)]),
        "depthwise": (lambda x, w: F.conv2d(x, w, None, 2, 1, 1, 3),
                      [tie_free(shape, seed=7), tie_free((3, 1, 3, 3), seed=8)]),
        "layer_norm": (lambda x, w, b: F.layer_norm(x, (7, 6), w, b),
                       [tie_free(shape, seed=9) * 2 + 1, tie_free((7, 6), seed=10) + 1, tie_free((7, 6), seed=11)]),
        "group_norm": (lambda x, w, b: F.group_norm(x, 3, w, b),
                       [tie_free(shape, seed=12) * 2 + 1, np.linspace(0.5, 1.5, 3), np.linspace(-1, 1, 3)]),
    }  # fmt: skip
    fn, inputs = fns[name]
    gradcheck(fn, inputs)


@needs_numba
def test_relu_keeps_its_output_and_refuses_backward_after_it_was_changed_in_place(monkeypatch):
    import hubkit
    import hubkit.nn.functional as F
    from hubkit.errors import GradError

    monkeypatch.setattr(_jit, "_enabled", True)
    x = hubkit.tensor(_rand(4, 5), requires_grad=True)
    y = F.relu(x)
    with hubkit.no_grad():
        y.add_(1)  # written into the array backward kept
    with pytest.raises(GradError, match="modified by an inplace"):
        y.sum().backward()
    # recorded in-place ops leave the kept array alone, and the gradient is right
    x.grad = None
    z = F.relu(x)
    z.add_(1)
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (x.numpy() > 0).astype(np.float32))


@needs_numba
@pytest.mark.parametrize(
    "nesterov, maximize, weight_decay, dampening",
    [(False, False, 0.0, 0.0), (True, False, 1e-2, 0.0), (False, True, 0.0, 0.3)],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_update_compiled_matches_the_generic_rule(nesterov, maximize, weight_decay, dampening, dtype, monkeypatch):
    from hubkit.kernels import generic

    p0 = _rand(7, 13, dtype=dtype)
    grads = [_rand(7, 13, dtype=dtype) for _ in range(3)]
    args = (0.1, 0.9, dampening, weight_decay, nesterov, maximize)

    def run(update):
        p, buf = p0.copy(), None
        for g in grads:  # the first step creates the buffer, the next ones update it
            buf = update(p, g, buf, *args)
        return p, buf

    monkeypatch.setattr(_jit, "_enabled", True)
    want, got = run(generic.sgd_update), run(cpu.sgd_update)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for w_, g_ in zip(want, got):
        np.testing.assert_allclose(g_, w_, rtol=tol, atol=tol)
    p = p0.copy()
    assert cpu.sgd_update(p, grads[0], None, 0.1, 0.0, 0.0, 0.0, False, False) is None  # no momentum: no buffer
    np.testing.assert_allclose(p, p0 - 0.1 * grads[0], rtol=tol)


@needs_numba
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_adadelta_compiled_matches_the_numpy_rule_bit_for_bit(weight_decay, dtype, threads, monkeypatch):
    """Three steps of optim.Adadelta on both paths: the compiled pass does the numpy reference's operations
    in the same order, so the parameters and both state arrays agree exactly (on any thread count)."""
    import hubkit
    from hubkit import optim

    def run():
        p = hubkit.tensor(np.linspace(-1, 1, 70007).astype(dtype).reshape(7, 10001), requires_grad=True)
        opt = optim.Adadelta([p], lr=0.5, rho=0.8, eps=1e-5, weight_decay=weight_decay)
        for k in range(3):
            p.grad = hubkit.tensor(np.cos(np.arange(p.numel()) * (k + 1)).astype(dtype).reshape(p.shape))
            opt.step()
        state = opt.state[p]
        return p.numpy().copy(), state["square_avg"].numpy().copy(), state["acc_delta"].numpy().copy()

    want, got = _both_on_threads(monkeypatch, run, threads)
    for a, r in zip(got, want):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, r)


@needs_numba
@pytest.mark.parametrize("variant", ["adam", "adamw", "amsgrad", "coupled-decay-maximize"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_adam_compiled_matches_the_numpy_rule_bit_for_bit(variant, dtype, threads, monkeypatch):
    """Four steps of optim.Adam/AdamW on both paths: the compiled pass does generic.adam_update's operations in
    the same order, so the parameters and every state array agree exactly (no state is subnormal here), on any
    thread count; a non-contiguous gradient is taken too."""
    import hubkit
    from hubkit import optim

    def run():
        p = hubkit.tensor(np.linspace(-1, 1, 70007).astype(dtype).reshape(7, 10001), requires_grad=True)
        if variant == "adamw":
            opt = optim.AdamW([p], lr=0.01, weight_decay=0.1)
        elif variant == "amsgrad":
            opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.95), amsgrad=True)
        elif variant == "coupled-decay-maximize":
            opt = optim.Adam([p], lr=0.01, weight_decay=0.05, maximize=True)
        else:
            opt = optim.Adam([p], lr=0.01)
        for k in range(4):
            g = np.cos(np.arange(p.numel()) * (k + 1)).astype(dtype).reshape(10001, 7).T  # a transposed view
            p.grad = hubkit.tensor(g * (k + 1) if k != 2 else -g)
            opt.step()
        state = opt.state[p]
        return [p.numpy().copy()] + [state[name].numpy().copy() for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
                                     if name in state]  # fmt: skip

    want, got = _both_on_threads(monkeypatch, run, threads)
    assert len(got) == (4 if variant == "amsgrad" else 3)
    for a, r in zip(got, want):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, r)


@needs_numba
def test_adam_compiled_flushes_subnormal_moments_and_keeps_nan():
    """Moments below the smallest normal number become 0 (their parameter moves by less than lr * 1.2e-38 / eps
    from the unflushed rule); a NaN gradient still makes its parameter NaN."""
    from hubkit.kernels import cpu_elementwise, generic

    tiny = np.finfo(np.float32).tiny
    p0 = np.linspace(0.5, 1.5, 40000).astype(np.float32)
    g = np.zeros_like(p0)
    g[7] = np.nan
    state0 = (np.full_like(p0, tiny * 4), np.full_like(p0, tiny * 4))  # one decay step from subnormal
    got_p, want_p = p0.copy(), p0.copy()
    got_s = [a.copy() for a in state0]
    want_s = [a.copy() for a in state0]
    cpu_elementwise.adam_update(got_p, g, *got_s, None, 10, 1e-3, 0.2, 0.2, 1e-8, 0.0, False, False)
    generic.adam_update(want_p, g, *want_s, None, 10, 1e-3, 0.2, 0.2, 1e-8, 0.0, False, False)
    assert ((want_s[0] > 0) & (want_s[0] < tiny)).any()  # the plain rule went subnormal
    for a in got_s:
        assert not ((np.abs(a) > 0) & (np.abs(a) < tiny)).any()
    assert np.isnan(got_p[7]) and np.isnan(want_p[7])
    finite = ~np.isnan(want_p)
    np.testing.assert_allclose(got_p[finite], want_p[finite], rtol=0, atol=1e-30)


# ---------------------------------------------------------------- the threaded add (residual connections)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_add_on_numbas_threads_gives_numpys_sums(monkeypatch, dtype):
    import hubkit
    from hubkit.kernels import cpu_elementwise

    monkeypatch.setattr(_jit, "_spins_long", False)
    x, y = _rand(300, 1001, dtype=dtype), _rand(300, 1001, dtype=dtype)
    y[0, :3] = [np.inf, -np.inf, np.nan]

    def run():
        return (hubkit.tensor(x) + hubkit.tensor(y)).numpy()

    want, got = _both_on_threads(monkeypatch, run, 2)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, x + y)
    if _jit.parallel_threads() >= 2:
        before = hubkit.get_num_threads()
        hubkit.set_num_threads(2)
        try:
            assert cpu_elementwise.add(x, y) is not None
        finally:
            hubkit.set_num_threads(before)


@needs_numba
def test_the_threaded_add_leaves_other_operands_to_numpy():
    from hubkit.kernels import cpu_elementwise

    x = _rand(400, 500)
    assert cpu_elementwise.add(x, x.astype(np.float64)) is None  # mixed types: numpy's promotion
    assert cpu_elementwise.add(x, x[:, :1]) is None  # broadcasting
    assert cpu_elementwise.add(x, np.asfortranarray(x)) is None
    assert cpu_elementwise.add(x.astype(np.int32), x.astype(np.int32)) is None
