"""The direct convolution (``cpu_wide.py``, numba) against the numpy im2col + GEMM path, and numba's parallel
drivers against the serial ones.

The direct kernels run when numba is installed and a layer is small (LeNet-5's); the GEMM path is the
reference. Every case runs the three gradients' kernels (forward, input gradient, weight gradient) on odd
shapes: strides, asymmetric padding, dilation, groups, partial channel blocks, batch 1, non-contiguous
arrays and float64, once on one thread (serial drivers) and once on two (numba's parallel drivers).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import hubkit
from hubkit.kernels import _jit, cpu_conv, cpu_elementwise, cpu_pool, cpu_wide

RNG = np.random.default_rng(11)
needs_numba = pytest.mark.skipif(not _jit.available(), reason="numba is not installed: no compiled kernels to test")

# x shape, w shape, stride, pads, dilation, groups
CASES = [
    ((4, 1, 28, 28), (6, 1, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),  # LeNet-5's first layer
    ((3, 6, 14, 14), (16, 6, 5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # its second
    ((1, 3, 11, 9), (5, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # batch 1, a partial block of one
    ((2, 4, 9, 11), (6, 2, 3, 3), (2, 1), ((1, 0), (2, 1)), (1, 2), 2),  # stride, asymmetric pads, groups
    ((2, 3, 10, 7), (7, 3, 3, 2), (2, 3), ((1, 1), (0, 2)), (2, 1), 1),  # rows and columns no window reaches
    ((2, 8, 8, 8), (12, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4),  # blocks of three within groups
    ((2, 5, 7, 7), (9, 5, 1, 1), (1, 1), ((1, 1), (0, 0)), (1, 1), 1),  # padded 1x1, one tap
    ((2, 2, 9, 8), (3, 2, 2, 4), (3, 2), ((0, 1), (2, 0)), (1, 1), 1),  # even tap count, stride 3
    ((2, 3, 64, 64), (8, 3, 7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1), 1),  # a stem: many chunks of outputs
    ((1, 2, 5, 5), (4, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # a run of 35: the last chunk overlaps
    ((2, 4, 9, 10), (6, 4, 3, 4), (1, 1), ((0, 2), (1, 3)), (1, 1), 1),  # asymmetric pads up to K - 1
    ((2, 3, 4, 4), (5, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # a run of 24: 16-output chunks only
    ((2, 2, 3, 3), (4, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # a run of 15: no chunk at all
]


@pytest.fixture(autouse=True)
def compiled_small_jobs(monkeypatch):
    monkeypatch.setattr(_jit, "MIN_WORK", 0)
    threads = hubkit.get_num_threads()
    yield
    hubkit.set_num_threads(threads)


def _rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _noncontiguous(a):
    out = np.swapaxes(np.ascontiguousarray(np.swapaxes(a, -1, -2)), -1, -2)
    assert not out.flags.c_contiguous
    return out


def _two_threads_or_skip():
    hubkit.set_num_threads(2)
    if _jit.parallel_threads() < 2:
        pytest.skip("numba's parallel threads are not usable here (one core, or no thread-safe threading layer)")


def _conv_all(x, w, b, stride, pads, dil, groups):
    """Forward (keeping what the weight gradient needs), both gradients together, each alone."""
    y, columns = cpu_conv.conv2d(x, w, b, stride, pads, dil, groups, keep_columns=True)
    gy = np.cos(np.arange(y.size)).reshape(y.shape).astype(y.dtype)
    args = (x.shape[2:], stride, pads, dil, groups, columns)
    gx, gw = cpu_conv.conv2d_backward(x, gy, w, w.shape, *args, True, True)
    _, gw_only = cpu_conv.conv2d_backward(x, _noncontiguous(gy), None, w.shape, *args, False, True)
    gx_only, _ = cpu_conv.conv2d_backward(None, gy, w, w.shape, *args, True, False)
    return y, gx, gw, gw_only, gx_only


@needs_numba
@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", CASES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_conv_matches_the_gemm_path(xs, ws, stride, pads, dil, groups, threads, dtype, monkeypatch):
    if threads == 2:
        _two_threads_or_skip()
    else:
        hubkit.set_num_threads(1)
    x, w, b = _noncontiguous(_rand(*xs, dtype=dtype)), _rand(*ws, dtype=dtype), _rand(ws[0], dtype=dtype)
    assert cpu_wide.direct_applies((x.dtype, w.dtype), ws[1] * ws[2] * ws[3], ws[0], groups, ws[2:], pads, x.size)
    limit = cpu_wide._DIRECT_MAX_ROWS
    monkeypatch.setattr(cpu_wide, "_DIRECT_MAX_ROWS", 0)  # the reference: im2col + GEMM
    want = _conv_all(x, w, b, stride, pads, dil, groups)
    monkeypatch.setattr(cpu_wide, "_DIRECT_MAX_ROWS", limit)
    got = _conv_all(x, w, b, stride, pads, dil, groups)
    tol = 3e-5 if dtype == np.float32 else 1e-12
    for name, a, r in zip(["y", "gx", "gw", "gw alone", "gx alone"], got, want):
        assert a.shape == r.shape and a.dtype == r.dtype, name
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol * np.abs(r).max(), err_msg=name)


@needs_numba
def test_direct_conv_results_do_not_depend_on_the_thread_count():
    """Each image is computed whole by one thread and the weight gradient is summed over images afterwards,
    so one and two threads give the same bits."""
    x, w, b = _rand(8, 6, 14, 14), _rand(16, 6, 5, 5), _rand(16)
    hubkit.set_num_threads(1)
    one = _conv_all(x, w, b, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    _two_threads_or_skip()
    two = _conv_all(x, w, b, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    for a, r in zip(one, two):
        np.testing.assert_array_equal(a, r)


@needs_numba
def test_direct_conv_runs_where_it_is_faster_and_nowhere_else(monkeypatch):
    f32 = np.dtype(np.float32)
    pads0, pads2 = ((0, 0), (0, 0)), ((2, 2), (2, 2))
    assert cpu_wide.direct_applies((f32, f32), 25, 6, 1, (5, 5), pads2, 1 << 20)  # LeNet-5
    assert cpu_wide.direct_applies((f32, f32), 150, 16, 1, (5, 5), pads0, 1 << 20)
    assert cpu_wide.direct_applies((f32, f32), 288, 64, 1, (3, 3), pads2, 1 << 20)  # the MNIST example's second
    assert not cpu_wide.direct_applies((f32, f32), 576, 64, 1, (3, 3), pads2, 1 << 20)  # ResNet's 64->64: GEMM
    assert not cpu_wide.direct_applies((f32, f32), 27, 128, 1, (3, 3), pads2, 1 << 20)  # many output channels
    assert not cpu_wide.direct_applies((f32, f32), 16, 16, 1, (1, 1), pads0, 1 << 20)  # 1x1: one GEMM
    assert not cpu_wide.direct_applies((f32, np.dtype(np.float64)), 25, 6, 1, (5, 5), pads2, 1 << 20)
    assert not cpu_wide.direct_applies((np.dtype(np.int32), np.dtype(np.int32)), 25, 6, 1, (5, 5), pads2, 1 << 20)
    monkeypatch.setattr(_jit, "_enabled", False)
    assert not cpu_wide.direct_applies((f32, f32), 25, 6, 1, (5, 5), pads2, 1 << 20)


@needs_numba
@pytest.mark.parametrize(
    "stride, pads, dil, as_forward",
    [
        ((1, 1), ((2, 2), (2, 2)), (1, 1), True),  # pads up to K - 1: the forward of gy, flipped kernel
        ((1, 1), ((0, 1), (2, 0)), (1, 1), True),
        ((2, 2), ((1, 1), (1, 1)), (1, 1), False),  # strided: the scatter kernel
        ((1, 1), ((1, 1), (1, 1)), (2, 1), False),  # dilated
        ((1, 1), ((3, 3), (0, 0)), (1, 1), False),  # wider padding than K - 1 = 2
    ],
)
def test_direct_input_gradient_runs_as_a_forward_convolution_only_where_that_is_exact(
    stride, pads, dil, as_forward, monkeypatch
):
    hubkit.set_num_threads(1)
    x, w = _rand(2, 4, 9, 8), _rand(6, 2, 3, 3)
    y, _ = cpu_conv.conv2d(x, w, None, stride, pads, dil, 2, keep_columns=True)
    gy = _rand(*y.shape)
    calls = []
    forward = cpu_wide.conv2d
    monkeypatch.setattr(cpu_wide, "conv2d", lambda *a, **k: calls.append(a[6]) or forward(*a, **k))
    gx, gw = cpu_conv.conv2d_backward(x, gy, w, w.shape, x.shape[2:], stride, pads, dil, 2, None, True, True)
    assert bool(calls) == as_forward
    monkeypatch.setattr(cpu_wide, "_DIRECT_MAX_ROWS", 0)  # the reference: im2col + GEMM
    want_gx, want_gw = cpu_conv.conv2d_backward(x, gy, w, w.shape, x.shape[2:], stride, pads, dil, 2, None, True,
                                                True)  # fmt: skip
    np.testing.assert_allclose(gx, want_gx, rtol=3e-5, atol=3e-5 * np.abs(want_gx).max())
    np.testing.assert_allclose(gw, want_gw, rtol=3e-5, atol=3e-5 * np.abs(want_gw).max())


@needs_numba
def test_direct_conv_keeps_no_columns_and_its_weight_gradient_reads_the_input():
    x, w = _rand(2, 1, 12, 12), _rand(6, 1, 5, 5)
    y, columns = cpu_conv.conv2d(x, w, None, (1, 1), ((2, 2), (2, 2)), (1, 1), 1, keep_columns=True)
    assert columns is None and y.shape == (2, 6, 12, 12)


@needs_numba
def test_conv2d_op_on_the_direct_path_passes_gradcheck():
    from opcheck import gradcheck, tie_free

    import hubkit.nn.functional as F

    x, w, b = tie_free((2, 4, 7, 6), seed=21), tie_free((6, 2, 3, 2), seed=22), tie_free((6,), seed=23)
    f64 = np.dtype(np.float64)
    assert cpu_wide.direct_applies((f64, f64), 12, 6, 2, (3, 2), ((1, 1), (0, 0)), 0)
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2), [x, w, b])


# ---------------------------------------------------------------- numba's parallel drivers


@needs_numba
@pytest.mark.parametrize("shape", [(3, 5, 12, 10), (2, 3, 9, 7)])
def test_parallel_pool_and_clamp_drivers_match_the_serial_kernels(shape):
    x = RNG.permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape).astype(np.float32)
    gy_pool = None

    def run():
        nonlocal gy_pool
        y, arg = cpu_pool.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False, True)
        gy_pool = np.cos(np.arange(y.size)).reshape(y.shape).astype(np.float32)
        gx = cpu_pool.max_pool2d_backward(gy_pool, arg, shape[2:], (2, 2), (2, 2), (0, 0), (1, 1), False)
        r = cpu_elementwise.clamp(x, 0.0, np.inf)
        gr = cpu_elementwise.clamp_backward(x, r, 0.0, 0.5)
        return y, arg, gx, r, gr

    hubkit.set_num_threads(1)
    serial = run()
    _two_threads_or_skip()
    for a, r in zip(run(), serial):
        np.testing.assert_array_equal(a, r)


def _same_bits_on_numba_threads(run, drivers, monkeypatch):
    """``run()`` on one thread (the serial kernels), then on two: every array the same bits, and each parallel
    driver in ``drivers`` (``_jit_kernels`` names) called on two threads only. Returns the serial results and
    the drivers' calls in order."""
    called = []
    jit = _jit.compiled()
    # a process that loaded torch's libgomp first keeps streaming jobs serial (_jit._spins_long); these tests
    # are about the parallel drivers' bits, so they run them whichever test imported torch before
    monkeypatch.setattr(_jit, "_spins_long", False)
    for name in drivers:
        real = getattr(jit, name)
        monkeypatch.setattr(jit, name, lambda *a, _real=real, _name=name: called.append(_name) or _real(*a))
    hubkit.set_num_threads(1)
    serial = run()
    assert not called
    _two_threads_or_skip()
    got = run()
    assert len(got) == len(serial)
    for a, r in zip(got, serial):
        np.testing.assert_array_equal(a, r)
    assert set(called) == set(drivers)
    return serial, called


@needs_numba
@pytest.mark.parametrize("shape", [(3, 5, 12, 10), (1, 7, 9), (4, 3, 5, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_batch_norm_drivers_match_the_serial_kernels(shape, dtype, monkeypatch):
    """BatchNorm's four compiled passes on numba's threads give the serial kernels' bits (each channel's
    statistics and each row are computed whole by one thread), and the numpy reference's values."""
    from hubkit.kernels import _cpu_util, cpu_norm

    monkeypatch.setattr(_cpu_util, "_NUMBA_PARALLEL_MIN_BYTES", 1)  # small test shapes still split
    x = (RNG.standard_normal(shape) * 3 + 1).astype(dtype)
    gy = RNG.standard_normal(shape).astype(dtype)
    weight, bias = RNG.standard_normal(shape[1]).astype(dtype), RNG.standard_normal(shape[1]).astype(dtype)

    def run():
        out = []
        for training in (True, False):
            stats = [np.linspace(-1, 1, shape[1]).astype(dtype), np.linspace(0.5, 2, shape[1]).astype(dtype)]
            y, saved, st = cpu_norm.batch_norm_forward(x, weight, bias, *stats, training, 0.1, 1e-5, True)
            out += [y, *stats, *cpu_norm.batch_norm_backward(gy, saved, st, weight, training, True, True, True)]
        return out

    drivers = ["channel_mean_var_parallel", "scale_shift_parallel", "channel_grad_sums_parallel",
               "batch_norm_input_grad_parallel"]  # fmt: skip
    serial, _ = _same_bits_on_numba_threads(run, drivers, monkeypatch)
    monkeypatch.setattr(_jit, "_enabled", False)  # the numpy reference
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for a, r in zip(run(), serial):
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol)


@needs_numba
@pytest.mark.parametrize("size", [1001, 4096])
def test_parallel_gelu_and_sgd_drivers_match_the_serial_kernels(size, monkeypatch):
    from hubkit.ops.elementwise import erf_array

    monkeypatch.setattr(cpu_elementwise, "_PARALLEL_MIN_ELEMENTS", 64)
    x = (RNG.standard_normal(size) * 3).astype(np.float32)
    g = RNG.standard_normal(size).astype(np.float32)

    def run():
        p, out = x.copy(), []
        buf = cpu_elementwise.sgd_update(p, g, None, 0.1, 0.9, 0.0, 1e-4, False, False)  # the first step
        for nesterov in (False, True):
            cpu_elementwise.sgd_update(p, g * 0.5, buf, 0.1, 0.9, 0.1 * (not nesterov), 1e-4, nesterov, True)
            out += [p.copy(), buf.copy()]
        return out + [cpu_elementwise.gelu(x, erf_array, False)[0], *cpu_elementwise.gelu(x, erf_array, True)]

    _same_bits_on_numba_threads(run, ["sgd_momentum_parallel", "gelu_erf_f32_parallel", "gelu_erf_cdf_f32_parallel"],
                                monkeypatch)  # fmt: skip


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_layer_and_group_norm_drivers_match_the_serial_kernels(dtype, monkeypatch):
    from hubkit.kernels import _cpu_util, cpu_norm

    monkeypatch.setattr(_cpu_util, "_NUMBA_PARALLEL_MIN_BYTES", 1)
    x = (RNG.standard_normal((3, 7, 24)) * 2 + 1).astype(dtype)
    w, b = RNG.standard_normal(24).astype(dtype), RNG.standard_normal(24).astype(dtype)
    gw, gb = RNG.standard_normal(7).astype(dtype), RNG.standard_normal(7).astype(dtype)

    def run():
        out = []
        for training in (True, False):
            out += [a for a in cpu_norm.layer_norm_forward(x, 1, w, b, 1e-5, training) if a is not None]
            out += [a for a in cpu_norm.group_norm_forward(x, 7, gw, gb, 1e-5, training) if a is not None]
        return out

    serial, _ = _same_bits_on_numba_threads(run, ["layer_norm_rows_parallel", "group_norm_rows_parallel"], monkeypatch)
    assert len(serial) == 9  # y, xhat, rstd of both in training; y of LayerNorm, y and rstd of GroupNorm in eval


DEPTHWISE_MAPS = [
    ((12, 10), (1, 1), ((1, 1), (1, 1))),  # channels-last (small maps)
    ((3, 4), (2, 1), ((1, 0), (1, 2))),
    ((40, 36), (1, 1), ((1, 1), (1, 1))),  # channels-first
    ((70, 66), (2, 2), ((1, 0), (1, 1))),
]


@needs_numba
@pytest.mark.parametrize("hw, stride, pads", DEPTHWISE_MAPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_depthwise_drivers_match_the_serial_kernels(hw, stride, pads, dtype, monkeypatch):
    """The depthwise convolution's six compiled passes (channels-first, and channels-last for small maps) on
    numba's threads give the serial kernels' bits: each image is computed whole by one thread."""
    from hubkit.kernels import _cpu_util, cpu_depthwise

    monkeypatch.setattr(_cpu_util, "_NUMBA_PARALLEL_MIN_BYTES", 1)
    x = RNG.standard_normal((3, 5) + hw).astype(dtype)
    w = RNG.standard_normal((5, 1, 3, 3)).astype(dtype)
    out_hw = tuple(cpu_conv.conv_out_size(s, 3, st, *p, 1) for s, st, p in zip(hw, stride, pads))
    gy = RNG.standard_normal((3, 5) + out_hw).astype(dtype)

    def run():
        return (cpu_depthwise.compiled_forward(x, w, stride, pads, (1, 1), out_hw),
                cpu_depthwise.compiled_grad_input(gy, w, hw, stride, pads, (1, 1)),
                cpu_depthwise.compiled_grad_weight(x, gy, (3, 3), stride, pads, (1, 1)))  # fmt: skip

    suffix = "_cl_parallel" if cpu_depthwise._small(out_hw) else "_parallel"
    names = [f"depthwise_{kind}{suffix}" for kind in ("forward", "input_grad", "weight_grad")]
    _, called = _same_bits_on_numba_threads(run, names, monkeypatch)
    assert sorted(called) == sorted(names)  # each once


@needs_numba
def test_pool_threads_run_the_serial_drivers():
    from hubkit.kernels import _threads

    _two_threads_or_skip()
    assert _threads.parallel_for(4, lambda a, b: _jit.parallel_threads(), 1) == [1] * len(_threads.chunk_bounds(4, 1))


@needs_numba
def test_an_unsafe_threading_layer_keeps_the_kernels_on_hubkits_pool(monkeypatch):
    import numba

    hubkit.set_num_threads(2)
    monkeypatch.setattr(_jit, "_parallel_ok", None)
    monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
    assert _jit.parallel_threads() == 1 and _jit._parallel_ok is False


@needs_numba
def test_a_child_forked_after_parallel_kernels_ran_still_computes():
    """GNU OpenMP terminates a forked child that starts a parallel region after its parent used one; hubkit's
    child runs the serial drivers instead (a DataLoader worker is such a child)."""
    script = (
        "import os, numpy as np, hubkit\n"
        "from hubkit.kernels import _jit, cpu_conv\n"
        "hubkit.set_num_threads(2)\n"
        "x = np.random.default_rng(0).standard_normal((64, 6, 14, 14), dtype=np.float32)\n"
        "w = np.random.default_rng(1).standard_normal((16, 6, 5, 5), dtype=np.float32)\n"
        "args = (None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)\n"
        "y = cpu_conv.conv2d(x, w, *args)\n"
        "used = _jit.parallel_threads()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = _jit.parallel_threads() == 1 and np.array_equal(cpu_conv.conv2d(x, w, *args), y)\n"
        "    os._exit(0 if ok else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(used, os.waitstatus_to_exitcode(status))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    used, child = out.stdout.split()
    assert child == "0", out.stderr
    if used != "2":
        pytest.skip("numba's parallel threads are not usable here: the parent ran the serial drivers too")


@pytest.mark.parity
@needs_numba
@pytest.mark.parametrize(
    "xs, ws, stride, pads, dil, groups", [c for c in CASES if c[3][0][0] == c[3][0][1] and c[3][1][0] == c[3][1][1]]
)
def test_direct_conv_matches_torch(xs, ws, stride, pads, dil, groups):
    torch = pytest.importorskip("torch")
    x, w, b = _rand(*xs, dtype=np.float64), _rand(*ws, dtype=np.float64), _rand(ws[0], dtype=np.float64)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride, (pads[0][0], pads[1][0]), dil, groups)
    gy = np.cos(np.arange(yt.numel())).reshape(yt.shape)
    yt.backward(torch.from_numpy(gy))
    y = cpu_conv.conv2d(x, w, b, stride, pads, dil, groups)
    gx, gw = cpu_conv.conv2d_backward(x, gy, w, w.shape, xs[2:], stride, pads, dil, groups, None, True, True)
    for got, want in ((y, yt), (gx, xt.grad), (gw, wt.grad)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("preset", [None, "GOMP_SPINCOUNT=123", "OMP_WAIT_POLICY=PASSIVE"])
def test_openmp_workers_spin_briefly_unless_the_user_chose(preset):
    """Spinning OpenMP workers would hold the core hubkit's pool needs next (see ``_jit._GOMP_SPINCOUNT``)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env["NUMBA_THREADING_LAYER"] = "omp"
    if preset:
        key, value = preset.split("=")
        env[key] = value
    out = subprocess.run([sys.executable, "-c", _LAYER_SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    expected = {None: _jit._GOMP_SPINCOUNT, "GOMP_SPINCOUNT=123": "123", "OMP_WAIT_POLICY=PASSIVE": "None"}[preset]
    assert out.stdout.split() == ["omp", expected, "same"]


# Starts numba's threads, then prints the layer, GOMP_SPINCOUNT and whether the direct convolution on numba's
# threads (one where the machine has one core) gives the serial kernel's bits.
_LAYER_SCRIPT = (
    "import os, numba, numpy as np, hubkit\n"
    "from hubkit.kernels import _jit, cpu_conv\n"
    "x = np.random.default_rng(0).standard_normal((8, 6, 14, 14), dtype=np.float32)\n"
    "w = np.random.default_rng(1).standard_normal((16, 6, 5, 5), dtype=np.float32)\n"
    "args = (None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)\n"
    "hubkit.set_num_threads(1)\n"
    "serial = cpu_conv.conv2d(x, w, *args)\n"
    "hubkit.set_num_threads(2)\n"
    "_jit.parallel_threads()\n"
    "same = np.array_equal(cpu_conv.conv2d(x, w, *args), serial)\n"
    "print(numba.threading_layer(), os.environ.get('GOMP_SPINCOUNT'), 'same' if same else 'differ')\n"
)


@needs_numba
def test_the_tbb_wheel_serves_a_user_who_asks_numba_for_tbb():
    """pip's ``tbb`` (in the test extra on x86-64 Linux) installs ``libtbb.so.12`` outside the loader's path,
    where numba finds no threading layer at all; hubkit loads it so numba runs on TBB, and leaves
    GOMP_SPINCOUNT alone."""
    import os
    from importlib import metadata

    try:
        metadata.version("tbb")
    except metadata.PackageNotFoundError:
        pytest.skip("the tbb package is not installed (the test extra installs it on x86-64 Linux only)")
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    env["NUMBA_THREADING_LAYER"] = "tbb"
    out = subprocess.run([sys.executable, "-c", _LAYER_SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tbb", "None", "same"]


@needs_numba
def test_direct_conv_in_runs_of_images_on_numba_threads(monkeypatch):
    """numba's threads take the batch a run of images at a time (``_PARALLEL_RUN_BYTES``); an image is computed
    whole either way, so one image per run gives the same bits as the whole batch in one run."""
    _two_threads_or_skip()
    x, w, b = _rand(5, 3, 30, 30), _rand(8, 3, 7, 7), _rand(8)
    pads = ((3, 3), (3, 3))
    whole = _conv_all(x, w, b, (2, 2), pads, (1, 1), 1)
    monkeypatch.setattr(cpu_wide, "_PARALLEL_RUN_BYTES", 1)
    assert len(cpu_wide._runs(5, 100)) == 5
    single = _conv_all(x, w, b, (2, 2), pads, (1, 1), 1)
    for a, r in zip(single, whole):
        np.testing.assert_array_equal(a, r)


@needs_numba
@pytest.mark.parametrize("chunks", [0, 2, 3])
def test_wide_layout_copies_match_numpy(chunks):
    """The compiled pad and widen copies (flat, unsigned indexes; serial and on numba's threads) against numpy:
    every entry written, padding zero, on odd row counts and offsets."""
    jit = _jit.compiled()
    x = _rand(37, 5, 7)
    for pt, pl, ph, pw in [(0, 0, 6, 7), (2, 1, 9, 10), (1, 3, 8, 12)]:
        want = np.zeros((37, ph, pw), dtype=x.dtype)
        want[:, pt : pt + 5, pl : pl + 7] = x[:, : ph - pt, : pw - pl]
        got = np.full((37, ph, pw), np.nan, dtype=x.dtype)
        if chunks:
            jit.pad_rows_parallel(x, got, pt, pl, chunks)
        else:
            jit.pad_rows(x, got, pt, pl)
        np.testing.assert_array_equal(got, want)
    g = _rand(41, 9)
    want = np.concatenate([g, np.zeros((41, 4), dtype=g.dtype)], axis=1)
    got = np.full((41, 13), np.nan, dtype=g.dtype)
    if chunks:
        jit.widen_rows_parallel(g, got, chunks)
    else:
        jit.widen_rows(g, got)
    np.testing.assert_array_equal(got, want)


@needs_numba
@pytest.mark.parametrize("preload", [False, True])
def test_large_jobs_stay_on_the_pool_when_openmp_was_loaded_first_with_its_long_spin(preload):
    """torch loads GNU OpenMP with its default 300,000-iteration spin before hubkit can set GOMP_SPINCOUNT; then
    only small convolution and pooling jobs run on numba's threads (``_jit._LONG_SPIN_MAX_BYTES``), elementwise
    ones on the pool. Loading libgomp first does the same as importing torch first."""
    import ctypes
    import os

    _two_threads_or_skip()

    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        pytest.skip("no GNU OpenMP library here")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env["NUMBA_THREADING_LAYER"] = "omp"
    script = (
        ("import ctypes; ctypes.CDLL('libgomp.so.1', mode=ctypes.RTLD_GLOBAL)\n" if preload else "")
        + "import hubkit\n"
        "from hubkit.kernels import _jit\n"
        "hubkit.set_num_threads(2)\n"
        "small = _jit.parallel_threads(_jit._LONG_SPIN_MAX_BYTES)\n"
        "large = _jit.parallel_threads(_jit._LONG_SPIN_MAX_BYTES + 1)\n"
        "print(_jit._spins_long, small, large, _jit.parallel_threads(1024, streaming=True))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == (["True", "2", "1", "1"] if preload else ["False", "2", "2", "2"])


@needs_numba
def test_elementwise_jobs_stay_on_the_pool_when_openmp_spins_long(monkeypatch):
    """With a long-spinning libgomp (``_jit._spins_long``) clamp's parallel driver is skipped: the job is split
    over hubkit's pool instead, with the same result. Small convolution jobs keep numba's threads."""
    _two_threads_or_skip()
    jit = _jit.compiled()
    calls = []
    monkeypatch.setattr(jit, "clamp_parallel", lambda *args: calls.append(len(args)))
    x = RNG.standard_normal((1, 4, 256, 256)).astype(np.float32)
    monkeypatch.setattr(_jit, "_spins_long", True)
    np.testing.assert_array_equal(cpu_elementwise.clamp(x, 0.0, np.inf), np.maximum(x, 0))
    assert calls == [] and _jit.parallel_threads(1 << 20) == 2
    monkeypatch.setattr(_jit, "_spins_long", False)
    cpu_elementwise.clamp(x, 0.0, np.inf)
    assert len(calls) == 1
