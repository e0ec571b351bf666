"""kernels.nd: the resampling taps and their adjoints, and the same N-d ops on a CUDA device (cupy) giving the
CPU's values, indices and gradients (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
import hubkit.nn.functional as F
from hubkit.kernels import nd

RNG = np.random.default_rng(2)

TAPS = [
    ("nearest", lambda: nd.nearest_taps(5, 12, None)),
    ("nearest-down", lambda: nd.nearest_taps(11, 4, 0.4)),
    ("nearest-exact", lambda: nd.nearest_exact_taps(7, 3, None)),
    ("linear", lambda: nd.linear_taps(5, 9, False, None)),
    ("linear-corners", lambda: nd.linear_taps(9, 4, True, None)),
    ("cubic", lambda: nd.cubic_taps(6, 13, False, 2.2)),
    ("antialias-bicubic", lambda: nd.antialias_taps(20, 6, False, None, "bicubic")),
    ("antialias-lanczos", lambda: nd.antialias_taps(6, 15, False, None, "lanczos")),
    ("area", lambda: nd.area_taps(7, 3)),
]


def _dense(taps: nd.Taps) -> np.ndarray:
    """The (out, in) matrix of ``taps``."""
    t, out = taps.index.shape
    weight = np.ones((t, out)) if taps.weight is None else taps.weight
    m = np.zeros((out, taps.in_size))
    for k in range(t):
        np.add.at(m, (np.arange(out), taps.index[k]), weight[k])
    return m


@pytest.mark.parametrize("name, make", TAPS, ids=[name for name, _ in TAPS])
def test_transposed_taps_are_the_adjoint(name, make):
    taps = make()
    np.testing.assert_allclose(_dense(nd.transpose_taps(taps)), _dense(taps).T, atol=1e-15)


@pytest.mark.parametrize("name, make", TAPS, ids=[name for name, _ in TAPS])
def test_resample_applies_the_taps_along_one_axis(name, make):
    taps = make()
    x = RNG.standard_normal((2, 3, taps.in_size, 4))
    y = nd.resample(x, (taps, None))
    np.testing.assert_allclose(y, np.einsum("oi,ncih->ncoh", _dense(taps), x), atol=1e-12)


def test_interpolation_weights_of_every_output_sum_to_one():
    for _, make in TAPS:
        taps = make()
        if taps.weight is not None:
            np.testing.assert_allclose(taps.weight.sum(axis=0), 1.0, atol=1e-12)


def test_unchanged_sizes_need_no_taps():
    assert nd.linear_taps(5, 5, False, 1.2) is None
    assert nd.antialias_taps(5, 5, False, None, "bilinear") is None


GPU_CASES = [
    ("conv3d", lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 1), padding=1, groups=2),
     [(2, 4, 5, 6, 5), (6, 2, 3, 3, 2), (6,)]),
    ("conv-transpose3d", lambda x, w, b: F.conv_transpose3d(x, w, b, stride=2, padding=1, output_padding=(1, 0, 1)),
     [(2, 4, 3, 4, 3), (4, 3, 3, 2, 3), (3,)]),
    ("conv-transpose1d", lambda x, w: F.conv_transpose1d(x, w, stride=3, dilation=2), [(2, 3, 7), (3, 4, 3)]),
    ("max-pool3d", lambda x: F.max_pool3d(x, 3, stride=2, padding=1, ceil_mode=True), [(2, 3, 6, 7, 5)]),
    ("avg-pool3d", lambda x: F.avg_pool3d(x, (2, 3, 2), stride=2, padding=1, count_include_pad=False),
     [(2, 3, 6, 7, 5)]),
    ("avg-pool1d", lambda x: F.avg_pool1d(x, 3, stride=2, padding=1), [(2, 3, 9)]),
    ("adaptive-avg3d", lambda x: F.adaptive_avg_pool3d(x, (3, 2, 4)), [(2, 3, 7, 5, 6)]),
    ("adaptive-max3d", lambda x: F.adaptive_max_pool3d(x, (3, 2, 4)), [(2, 3, 7, 5, 6)]),
    ("lp-pool2d", lambda x: F.lp_pool2d(x.abs() + 0.5, 2, 2), [(2, 3, 6, 6)]),
    ("max-unpool3d", lambda x: F.max_unpool3d(*F.max_pool3d(x, 2, return_indices=True), 2), [(1, 2, 4, 6, 4)]),
    ("trilinear", lambda x: F.interpolate(x, size=(5, 3, 7), mode="trilinear"), [(1, 2, 3, 4, 5)]),
    ("bicubic", lambda x: F.interpolate(x, scale_factor=1.7, mode="bicubic", align_corners=True), [(1, 2, 5, 6)]),
    ("bilinear-antialias", lambda x: F.interpolate(x, size=(4, 5), mode="bilinear", antialias=True), [(1, 2, 9, 12)]),
    ("nearest-exact", lambda x: F.interpolate(x, size=(3, 5, 4), mode="nearest-exact"), [(1, 2, 4, 3, 5)]),
    ("area", lambda x: F.interpolate(x, scale_factor=0.5, mode="area"), [(1, 2, 6, 4, 8)]),
    ("unfold-fold", lambda x: F.fold(F.unfold(x, 3, padding=1, stride=2), (7, 6), 3, padding=1, stride=2),
     [(2, 3, 7, 6)]),
    ("pixel-shuffle", lambda x: F.pixel_shuffle(x, 2), [(2, 8, 3, 4)]),
]


@pytest.mark.gpu
@pytest.mark.parametrize(("name", "fn", "shapes"), GPU_CASES, ids=[c[0] for c in GPU_CASES])
def test_cuda_matches_cpu(name, fn, shapes):
    arrays = [RNG.permutation(int(np.prod(s))).reshape(s).astype(np.float32) / 10 for s in shapes]  # no ties
    results = []
    for device in ("cpu", "cuda"):
        xs = [hubkit.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = fn(*xs)
        assert out.device.type == device
        (out * out).sum().backward()
        results.append((out.cpu().detach().numpy(), [x.grad.cpu().numpy() for x in xs]))
    (cpu_out, cpu_grads), (gpu_out, gpu_grads) = results
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-4, atol=1e-4)
    for g_gpu, g_cpu in zip(gpu_grads, cpu_grads):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-4, atol=1e-3)


@pytest.mark.gpu
def test_cuda_pooling_indices_match_cpu():
    x = RNG.permutation(2 * 3 * 6 * 7 * 5).reshape(2, 3, 6, 7, 5).astype(np.float32)
    for fn in (lambda t: F.max_pool3d(t, (2, 3, 2), stride=(1, 2, 2), padding=1, return_indices=True),
               lambda t: F.adaptive_max_pool3d(t, (4, 3, 2), return_indices=True)):  # fmt: skip
        cpu_idx = fn(hubkit.tensor(x))[1].numpy()
        gpu_idx = fn(hubkit.tensor(x, device="cuda"))[1].cpu().numpy()
        np.testing.assert_array_equal(gpu_idx, cpu_idx)
