"""GPU kernels give the CPU kernels' results (float32 tolerance). Skipped without cupy and a CUDA device."""

from __future__ import annotations

import numpy as np
import pytest

from hubkit.kernels import cpu

pytestmark = pytest.mark.gpu

RNG = np.random.default_rng(1)


@pytest.fixture(scope="module")
def cuda():
    pytest.importorskip("cupy")
    from hubkit.kernels import cuda

    return cuda


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _close(gpu_value, cpu_value, rtol=1e-4, atol=1e-5):
    import cupy

    np.testing.assert_allclose(cupy.asnumpy(gpu_value), cpu_value, rtol=rtol, atol=atol)


CONV_CASES = [
    ((2, 3, 9, 8), (4, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 4, 9, 8), (6, 3, 2), (2, 3), ((0, 1), (2, 0)), (1, 1), 2),
    ((1, 4, 10, 10), (4, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 4),
    ((3, 4, 7, 5), (6, 1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 2),
    ((2, 3, 16, 16), (8, 7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1), 1),
]


@pytest.mark.parametrize("use_cudnn", [True, False], ids=["cudnn", "im2col"])
@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", CONV_CASES)
def test_conv2d_forward_and_gradients_match_cpu(cuda, xs, ws, stride, pads, dil, groups, use_cudnn, monkeypatch):
    import cupy

    import hubkit.backends.cudnn

    monkeypatch.setattr(hubkit.backends.cudnn, "enabled", use_cudnn)

    x, w, b = _rand(*xs), _rand(ws[0], xs[1] // groups, ws[1], ws[2]), _rand(ws[0])
    y = cpu.conv2d(x, w, b, stride, pads, dil, groups)
    _close(cuda.conv2d(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), stride, pads, dil, groups), y)
    gy = _rand(*y.shape)
    gx = cpu.conv2d_grad_input(gy, w, xs[2:], stride, pads, dil, groups)
    _close(cuda.conv2d_grad_input(cupy.asarray(gy), cupy.asarray(w), xs[2:], stride, pads, dil, groups), gx)
    gw = cpu.conv2d_grad_weight(x, gy, ws[1:], stride, pads, dil, groups)
    _close(cuda.conv2d_grad_weight(cupy.asarray(x), cupy.asarray(gy), ws[1:], stride, pads, dil, groups), gw)


def test_kept_columns_give_the_same_weight_gradient(cuda, monkeypatch):
    import cupy

    import hubkit.backends.cudnn

    monkeypatch.setattr(hubkit.backends.cudnn, "enabled", False)  # columns belong to the im2col path

    x, w = cupy.asarray(_rand(4, 6, 14, 14)), cupy.asarray(_rand(16, 6, 5, 5))
    args = ((1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    y, columns = cuda.conv2d(x, w, None, *args, keep_columns=True)
    assert columns is not None
    _close(y, cupy.asnumpy(cuda.conv2d(x, w, None, *args)))
    gy = cupy.asarray(_rand(*y.shape))
    want = cupy.asnumpy(cuda.conv2d_grad_weight(x, gy, (5, 5), *args))
    _close(cuda.conv2d_grad_weight(None, gy, (5, 5), *args, columns=columns), want)


def test_im2col_col2im_match_cpu_and_col2im_is_deterministic(cuda):
    import cupy

    x = _rand(2, 3, 9, 7)
    args = ((3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2))
    col = cpu.im2col(x, *args)
    _close(cuda.im2col(cupy.asarray(x), *args), col)
    g = _rand(*col.shape)
    first = cuda.col2im(cupy.asarray(g), x.shape, *args)
    _close(first, cpu.col2im(g, x.shape, *args))
    assert (cuda.col2im(cupy.asarray(g), x.shape, *args) == first).all()


POOL_CASES = [
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (2, 1), (1, 0), (2, 1), True),
]


@pytest.mark.parametrize("kernel, stride, padding, dil, ceil", POOL_CASES)
def test_max_pool2d_matches_cpu(cuda, kernel, stride, padding, dil, ceil):
    import cupy

    x = RNG.permutation(np.linspace(-1, 1, 2 * 3 * 9 * 8)).reshape(2, 3, 9, 8).astype(np.float32)
    y, arg = cpu.max_pool2d(x, kernel, stride, padding, dil, ceil, True)
    gy_, garg = cuda.max_pool2d(cupy.asarray(x), kernel, stride, padding, dil, ceil, True)
    _close(gy_, y, rtol=0, atol=0)
    np.testing.assert_array_equal(cupy.asnumpy(garg), arg)
    np.testing.assert_array_equal(
        cupy.asnumpy(cuda.max_pool2d_indices(garg, (9, 8), kernel, stride, padding, dil)),
        cpu.max_pool2d_indices(arg, (9, 8), kernel, stride, padding, dil),
    )
    g = _rand(*y.shape)
    gx = cpu.max_pool2d_backward(g, arg, (9, 8), kernel, stride, padding, dil, ceil)
    _close(cuda.max_pool2d_backward(cupy.asarray(g), garg, (9, 8), kernel, stride, padding, dil, ceil), gx)


@pytest.mark.parametrize("kernel, stride, padding, dil, ceil", [c for c in POOL_CASES if c[3] == (1, 1)])
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool2d_matches_cpu(cuda, kernel, stride, padding, dil, ceil, include_pad):
    import cupy

    x = _rand(2, 3, 9, 8)
    y = cpu.avg_pool2d(x, kernel, stride, padding, ceil, include_pad)
    _close(cuda.avg_pool2d(cupy.asarray(x), kernel, stride, padding, ceil, include_pad), y)
    g = _rand(*y.shape)
    gx = cpu.avg_pool2d_backward(g, (9, 8), kernel, stride, padding, ceil, include_pad)
    _close(cuda.avg_pool2d_backward(cupy.asarray(g), (9, 8), kernel, stride, padding, ceil, include_pad), gx)


@pytest.mark.parametrize("in_hw, out_hw", [((8, 6), (4, 3)), ((7, 5), (3, 2)), ((3, 4), (5, 7))])
def test_adaptive_pools_match_cpu(cuda, in_hw, out_hw):
    import cupy

    x = RNG.permutation(np.linspace(-1, 1, 2 * 3 * in_hw[0] * in_hw[1])).reshape(2, 3, *in_hw).astype(np.float32)
    gx_in = cupy.asarray(x)
    _close(cuda.adaptive_avg_pool2d(gx_in, out_hw), cpu.adaptive_avg_pool2d(x, out_hw))
    g = _rand(2, 3, *out_hw)
    _close(cuda.adaptive_avg_pool2d_backward(cupy.asarray(g), in_hw), cpu.adaptive_avg_pool2d_backward(g, in_hw))
    y, idx = cpu.adaptive_max_pool2d(x, out_hw)
    gy_, gidx = cuda.adaptive_max_pool2d(gx_in, out_hw)
    _close(gy_, y, rtol=0, atol=0)
    np.testing.assert_array_equal(cupy.asnumpy(gidx), idx)
    _close(
        cuda.adaptive_max_pool2d_backward(cupy.asarray(g), gidx, in_hw),
        cpu.adaptive_max_pool2d_backward(g, idx, in_hw),
    )


@pytest.mark.parametrize("in_hw, out_hw", [((4, 5), (8, 10)), ((7, 6), (3, 4)), ((6, 4), (13, 9))])
@pytest.mark.parametrize("align", [True, False])
def test_interpolation_matches_cpu(cuda, in_hw, out_hw, align):
    import cupy

    x = _rand(2, 3, *in_hw)
    g = _rand(2, 3, *out_hw)
    scales = (None, None)
    _close(cuda.upsample_bilinear2d(cupy.asarray(x), out_hw, align, scales),
           cpu.upsample_bilinear2d(x, out_hw, align, scales))  # fmt: skip
    _close(cuda.upsample_bilinear2d_backward(cupy.asarray(g), in_hw, align, scales),
           cpu.upsample_bilinear2d_backward(g, in_hw, align, scales))  # fmt: skip
    _close(cuda.upsample_nearest2d(cupy.asarray(x), out_hw, scales), cpu.upsample_nearest2d(x, out_hw, scales))
    _close(cuda.upsample_nearest2d_backward(cupy.asarray(g), in_hw, scales),
           cpu.upsample_nearest2d_backward(g, in_hw, scales))  # fmt: skip


def test_dispatcher_picks_cuda_for_cupy_arrays(cuda):
    import cupy

    from hubkit import kernels

    assert kernels.kernels_for(cupy.zeros(1)) is cuda


BN_SHAPES = [
    (4, 3, 9, 7),  # 63 values per plane: the plane kernel, one pass of the block
    (5, 6, 40, 40),  # planes longer than a block, more images than blocks per channel
    (3, 130, 8, 8),  # more channels than the GPU has multiprocessors x 4: one block per channel
    (6, 4, 5),  # BatchNorm1d over length 5: cupy's reductions
    (16, 3),  # (N, C)
]


@pytest.mark.parametrize("use_cudnn", [True, False], ids=["cudnn", "own-kernels"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_kernels_match_the_reference(cuda, shape, dtype, affine, use_cudnn, monkeypatch):
    import cupy

    import hubkit.backends.cudnn
    from hubkit.kernels import cudnn, generic

    monkeypatch.setattr(hubkit.backends.cudnn, "enabled", use_cudnn)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 3 + 40).astype(dtype)  # a large mean: the two-pass variance matters
    gy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    want_y, want_xhat, want_inv = generic.batch_norm_forward(x, w, b, rm, rv, True, 0.1, 1e-5, True)
    g = [None if a is None else cupy.asarray(a) for a in (x, w, b)]
    grm, grv = cupy.zeros(c, dtype), cupy.ones(c, dtype)
    y, saved, inv = cuda.batch_norm_forward(*g, grm, grv, True, 0.1, 1e-5, True)
    on_cudnn = isinstance(saved, cudnn.SavedBatchNorm)
    assert on_cudnn == (use_cudnn and len(shape) == 4 and cudnn.library() is not None)
    checks = [(y, want_y), (inv, want_inv), (grm, rm), (grv, rv)] + ([] if on_cudnn else [(saved, want_xhat)])
    for got, want in checks:
        _close(got, want, **tol)
    y_only, none, _ = cuda.batch_norm_forward(*g, None, None, True, 0.1, 1e-5, False)
    assert none is None
    _close(y_only, want_y, **tol)
    wg = None if w is None else cupy.asarray(w)
    for need in ((True, True, True), (False, False, True), (True, False, False)):
        want = generic.batch_norm_backward(gy, want_xhat, want_inv, w, True, *need)
        got = cuda.batch_norm_backward(cupy.asarray(gy), saved, inv, wg, True, *need)
        for gv, wv in zip(got, want):
            assert (gv is None) == (wv is None)
            if gv is not None:
                _close(gv, wv, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    # eval mode with the running statistics, without a graph (one cuDNN call) and with one
    want_eval = generic.batch_norm_forward(x, w, b, rm, rv, False, 0.1, 1e-5, False)[0]
    _close(cuda.batch_norm_forward(*g, grm, grv, False, 0.1, 1e-5, False)[0], want_eval, **tol)
    _close(cuda.batch_norm_forward(*g, grm, grv, False, 0.1, 1e-5, True)[0], want_eval, **tol)


def test_batch_norm_backward_after_cudnn_is_switched_off(cuda, monkeypatch):
    import cupy

    import hubkit.backends.cudnn
    from hubkit.kernels import generic

    x, gy = _rand(4, 3, 8, 8), _rand(4, 3, 8, 8)
    w, b = _rand(3), _rand(3)
    _, saved, inv = cuda.batch_norm_forward(*map(cupy.asarray, (x, w, b)), None, None, True, 0.1, 1e-5, True)
    monkeypatch.setattr(hubkit.backends.cudnn, "enabled", False)
    got = cuda.batch_norm_backward(cupy.asarray(gy), saved, inv, cupy.asarray(w), True, True, True, True)
    _, xhat, want_inv = generic.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, True)
    for gv, wv in zip(got, generic.batch_norm_backward(gy, xhat, want_inv, w, True, True, True, True)):
        _close(gv, wv, rtol=1e-3, atol=1e-4)


def test_channel_sums_are_deterministic(cuda):
    import cupy

    x = cupy.asarray(_rand(32, 64, 28, 28))
    first = cuda._channel_sums(x, 0)[0]
    for _ in range(3):
        assert (cuda._channel_sums(x, 0)[0] == first).all()


def test_relu_backward_follows_torchs_rule(cuda):
    import cupy

    y = cupy.asarray(np.array([-1.0, 0.0, 2.0, np.nan], dtype=np.float32))
    gy = cupy.asarray(np.array([5.0, 6.0, 7.0, 8.0], dtype=np.float32))
    np.testing.assert_array_equal(cupy.asnumpy(cuda.relu_backward(gy, y)), [0.0, 0.0, 7.0, 8.0])


SGD_SETTINGS = [  # lr, momentum, dampening, weight_decay, nesterov, maximize
    (0.1, 0.0, 0.0, 0.0, False, False),
    (0.1, 0.0, 0.0, 0.01, False, True),
    (0.05, 0.9, 0.0, 0.01, False, False),
    (0.05, 0.8, 0.0, 0.0, True, True),
    (0.05, 0.5, 0.3, 0.001, False, False),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", SGD_SETTINGS)
def test_sgd_over_a_group_in_one_launch_gives_the_per_parameter_updates(cuda, dtype, settings):
    import cupy

    shapes = [(3, 5), (1,), (0, 4), (257,), (7, 3, 3, 3), (2, 2)]
    host = [RNG.standard_normal(s).astype(dtype) for s in shapes]
    grads = [RNG.standard_normal(s).astype(dtype) for s in shapes]
    grads[-1] = np.asfortranarray(grads[-1])  # a non-contiguous gradient takes the per-parameter kernel
    many = [cupy.asarray(a) for a in host]
    one = [cupy.asarray(a) for a in host]
    gs = [cupy.asarray(g) for g in grads]
    bufs_many = [None] * len(shapes)
    bufs_one = [None] * len(shapes)
    for step in range(3):
        if step == 1:  # a parameter that starts its momentum later: both launches in one step
            bufs_many[1] = bufs_one[1] = None
        bufs_many = cuda.sgd_update_many(many, gs, bufs_many, *settings)
        bufs_one = [cuda.sgd_update(p, g, b, *settings) for p, g, b in zip(one, gs, bufs_one)]
        for a, b in zip(many, one):
            np.testing.assert_allclose(cupy.asnumpy(a), cupy.asnumpy(b), rtol=1e-6, atol=1e-7)
        for a, b in zip(bufs_many, bufs_one):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(cupy.asnumpy(a), cupy.asnumpy(b), rtol=1e-6, atol=1e-7)
    reference = [a.copy() for a in host]
    ref_bufs = [None] * len(shapes)
    for step in range(3):  # and the CPU's rule
        if step == 1:
            ref_bufs[1] = None
        ref_bufs = [cpu.sgd_update(p, g, b, *settings) for p, g, b in zip(reference, grads, ref_bufs)]
    for a, b in zip(many, reference):
        np.testing.assert_allclose(cupy.asnumpy(a), b, rtol=1e-5, atol=1e-6)


def test_sgd_over_a_group_takes_mixed_dtypes(cuda):
    import cupy

    ps = [cupy.ones(4, dtype=np.float32), cupy.ones(3, dtype=np.float64), cupy.ones(2, dtype=np.float16)]
    gs = [cupy.full(p.shape, 2, dtype=p.dtype) for p in ps]
    bufs = cuda.sgd_update_many(ps, gs, [None] * 3, 0.25, 0.9, 0.0, 0.0, False, False)
    for p, b in zip(ps, bufs):
        assert p.dtype == b.dtype
        np.testing.assert_array_equal(cupy.asnumpy(p), 0.5)
        np.testing.assert_array_equal(cupy.asnumpy(b), 2)
