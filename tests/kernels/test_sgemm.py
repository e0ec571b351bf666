"""hubkit's float32 matrix product (``kernels/_sgemm.py``'s LLVM micro-kernels, ``_jit_kernels.sgemm*``, routed by
``_threads.matmul``) against float64 numpy on odd shapes and layouts; the same numbers for any split over threads
and any thread count; and the products it must leave to BLAS."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit import nn
from hubkit.kernels import _jit, _mkl, _sgemm, _threads

RNG = np.random.default_rng(5)


def test_the_kernel_ir_is_valid_llvm():
    """The IR is checked by LLVM's verifier wherever llvmlite is installed, AVX-512 or not."""
    llvm = pytest.importorskip("llvmlite.binding")
    if llvm.llvm_version_info < (15,):
        pytest.skip("the kernel needs LLVM >= 15 (opaque pointers); this llvmlite is older and products stay on BLAS")
    for unroll in (1, 8):
        module = llvm.parse_assembly(_sgemm.kernel_ir(unroll))
        module.verify()
        assert {f.name for f in module.functions} >= {"hubkit_sgemm_rows", "hubkit_sgemm_packed"}


KERNELS = _sgemm.microkernels() if _jit.available() else None
needs_kernel = pytest.mark.skipif(
    KERNELS is None or not _jit.available(),
    reason="hubkit's float32 kernel needs an AVX-512 CPU, numba and llvmlite >= LLVM 15 (elsewhere BLAS runs)",
)


@pytest.fixture
def compiled():
    return _jit.compiled()


def _mat(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _reference(a, b, bias):
    ref = a.astype(np.float64) @ b.astype(np.float64)
    return ref + bias if bias is not None else ref


def _layouts(a):
    """``a`` as C-ordered, Fortran-ordered (Linear's weight gradient reads gy.T), every other column of a wider
    array, and reversed rows (a negative stride)."""
    wide = np.empty((a.shape[0], 2 * a.shape[1]), np.float32)
    wide[:, ::2] = a
    flipped = a[::-1].copy()[::-1]
    return {"c": a, "fortran": np.asfortranarray(a), "strided": wide[:, ::2], "reversed": flipped}


@needs_kernel
@pytest.mark.parametrize("m", [1, 11, 12, 13, 37, 97, 250])
@pytest.mark.parametrize("n", [1, 31, 32, 33, 65])
@pytest.mark.parametrize("k", [1, 7, 9, 384, 385, 769])
def test_the_kernel_matches_float64_on_odd_shapes(compiled, m, n, k):
    a, b, bias = _mat(m, k), _mat(k, n), _mat(n)
    ref = _reference(a, b, bias)
    tol = 1e-5 * np.sqrt(k) * max(1.0, float(np.abs(ref).max()))
    for name, view in _layouts(a).items():
        for b_view in (b, np.asfortranarray(b), b[::-1].copy()[::-1]):  # C-ordered, Linear's W.T, reversed rows
            out = np.full((m, n), np.nan, np.float32)
            compiled.sgemm(*KERNELS.functions, view, b_view, out, bias, True)
            np.testing.assert_allclose(out, ref, rtol=0, atol=tol, err_msg=f"a {name}")
    out = np.full((m, n), np.nan, np.float32)
    compiled.sgemm(*KERNELS.functions, a, b, out, bias, False)
    np.testing.assert_allclose(out, ref - bias, rtol=0, atol=tol)


@needs_kernel
def test_an_empty_inner_dimension_gives_the_bias(compiled):
    a, b, bias = _mat(5, 0), _mat(0, 40), _mat(40)
    out = np.full((5, 40), np.nan, np.float32)
    compiled.sgemm(*KERNELS.functions, a, b, out, bias, True)
    np.testing.assert_array_equal(out, np.broadcast_to(bias, (5, 40)))
    compiled.sgemm(*KERNELS.functions, a, b, out, bias, False)
    np.testing.assert_array_equal(out, 0)


@needs_kernel
def test_non_finite_values_reach_only_their_own_outputs(compiled):
    """Padding rows and columns of the 12 x 32 blocks are zeros: an inf must not leak a NaN into real outputs."""
    a, b = _mat(13, 20), _mat(20, 33)
    a[12, 3] = np.inf
    b[5, 32] = np.nan
    out = np.empty((13, 33), np.float32)
    compiled.sgemm(*KERNELS.functions, a, b, out, out[0], False)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))


@needs_kernel
@pytest.mark.parametrize("b_order", ["C", "F"])
@pytest.mark.parametrize("by_rows", [True, False])
def test_any_split_gives_the_same_numbers(compiled, by_rows, b_order):
    """Each entry is one chain of multiply-adds whatever chunk computes it, and whichever loop (B packed, or
    read in place for a part of few rows) runs it: splits at ragged places too."""
    m, k, n = 200, 800, 300
    a, b, bias = _mat(m, k), np.asarray(_mat(k, n), order=b_order), _mat(n)
    whole = np.empty((m, n), np.float32)
    compiled.sgemm(*KERNELS.functions, a, b, whole, bias, True)
    limit = m if by_rows else n
    for cuts in ([0, limit // 2, limit], [0, 7, 40, 41, limit], [0, 12, 24, limit] if by_rows else [0, 32, 64, limit]):
        out = np.full((m, n), np.nan, np.float32)
        compiled.sgemm_parallel(*KERNELS.functions, a, b, out, bias, True, np.array(cuts, np.int64), by_rows)
        np.testing.assert_array_equal(out, whole)


@pytest.fixture
def kernel_on(monkeypatch):
    """hubkit's kernel on, MKL off (MKL keeps float32 products where installed), numba's threads usable."""
    if KERNELS is None:
        pytest.skip("no AVX-512 kernel here")
    monkeypatch.setattr(_sgemm, "_enabled", True)
    monkeypatch.setattr(_mkl, "usable", lambda char: False)
    before = hubkit.get_num_threads()
    _jit.parallel_threads()  # load numba's threading layer first: that decides _spins_long, set off below
    monkeypatch.setattr(_jit, "_spins_long", False)
    yield
    hubkit.set_num_threads(before)


def _spy(monkeypatch, compiled):
    calls = []
    for name in ("sgemm", "sgemm_parallel"):
        real = getattr(compiled, name)
        monkeypatch.setattr(compiled, name, lambda *args, _real=real, _name=name: calls.append(_name) or _real(*args))
    return calls


@needs_kernel
@pytest.mark.parametrize("shape", [(512, 384, 384), (96, 200, 700), (1000, 64, 64)])
def test_matmul_gives_the_same_numbers_on_one_thread_and_two(kernel_on, monkeypatch, compiled, shape):
    m, k, n = shape
    a, w, bias = _mat(m, k), _mat(n, k), _mat(n)
    calls = _spy(monkeypatch, compiled)
    hubkit.set_num_threads(1)
    one = _threads.matmul(a, w.T, bias=bias)
    hubkit.set_num_threads(2)
    two = _threads.matmul(a, w.T, bias=bias)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, _reference(a, w.T, bias), rtol=0, atol=1e-4)
    assert calls[0] == "sgemm"
    if _threads._blas_owned and _jit.parallel_threads() >= 2:
        assert calls[1] == "sgemm_parallel"


@needs_kernel
def test_matmul_leaves_other_products_to_blas(kernel_on, monkeypatch, compiled):
    calls = _spy(monkeypatch, compiled)
    a, b = _mat(256, 300), _mat(300, 256)
    _threads.matmul(a.astype(np.float64), b.astype(np.float64))  # float64
    _threads.matmul(_mat(4096, 150), _mat(150, 10))  # a 10-column classifier fills a third of each block
    _threads.matmul(_mat(8, 8), _mat(8, 8))  # small
    _threads.matmul(_mat(40, 64, 128), _mat(40, 128, 64))  # a batch of matrices too small to pay a call each
    buffer = _mat(256, 300)
    _threads.matmul(buffer[:, :256], _mat(256, 256), out=buffer[:, 44:])  # the output overlaps an operand
    assert calls == []
    _threads.matmul(a, b)
    assert calls
    monkeypatch.setattr(_sgemm, "_enabled", False)
    calls.clear()
    _threads.matmul(a, b)
    assert calls == []


@needs_kernel
@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((3, 200, 300), (300, 96)), ((2, 1, 64, 600), (1, 3, 600, 128)), ((1, 64, 150), (4, 1, 150, 3000))],
)
def test_matmul_broadcasts_batches_through_the_kernel(kernel_on, monkeypatch, compiled, a_shape, b_shape):
    """A convolution's weights (G, OC, K) against a batch of column matrices (N, G, K, L): each matrix is one
    kernel call, with the numbers of the same product alone."""
    calls = _spy(monkeypatch, compiled)
    a, b = _mat(*a_shape), _mat(*b_shape)
    hubkit.set_num_threads(2)
    got = _threads.matmul(a, b)
    np.testing.assert_allclose(got, np.matmul(a.astype(np.float64), b), rtol=0, atol=2e-4)
    assert calls
    a_all, b_all = np.broadcast_to(a, got.shape[:-2] + a.shape[-2:]), np.broadcast_to(b, got.shape[:-2] + b.shape[-2:])
    for index in np.ndindex(*got.shape[:-2]):
        np.testing.assert_array_equal(got[index], _threads.matmul(np.array(a_all[index]), np.array(b_all[index])))


@needs_kernel
def test_matmul_writes_into_a_given_output_with_batch_axes_of_one(kernel_on):
    a, b, bias = _mat(1, 200, 300), _mat(1, 300, 64), _mat(64)
    out = np.full((1, 200, 64), np.nan, np.float32)
    result = _threads.matmul(a, b, out=out, bias=bias)
    assert result is out
    np.testing.assert_allclose(out, _reference(a, b, bias), rtol=0, atol=1e-4)


@needs_kernel
def test_a_linear_layer_trains_through_the_kernel(kernel_on, monkeypatch, compiled):
    """Forward (x @ W.T + b), and the two gradient products: gy @ W and gy.T @ x (A read through the packed path)."""
    calls = _spy(monkeypatch, compiled)
    layer = nn.Linear(300, 200)
    x = hubkit.tensor(_mat(128, 300), requires_grad=True)
    y = layer(x)
    gy = _mat(128, 200)
    y.backward(hubkit.tensor(gy))
    w, b = layer.weight.detach().numpy().astype(np.float64), layer.bias.detach().numpy()
    xs = x.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(y.detach().numpy(), xs @ w.T + b, rtol=0, atol=1e-4)
    np.testing.assert_allclose(x.grad.numpy(), gy @ w, rtol=0, atol=1e-4)
    np.testing.assert_allclose(layer.weight.grad.numpy(), gy.T.astype(np.float64) @ xs, rtol=0, atol=1e-3)
    assert len(calls) >= 3


def test_the_switch_turns_the_kernel_off(monkeypatch):
    monkeypatch.setattr(_sgemm, "_enabled", None)
    monkeypatch.setattr(_sgemm, "_searched", False)
    monkeypatch.setattr(_sgemm, "_kernels", None)
    monkeypatch.setenv("HUBKIT_SGEMM", "0")
    assert not _sgemm.enabled()
    assert _sgemm.microkernels() is None
    assert not _sgemm._searched  # switched off, nothing is compiled (no llvmlite import, no 0.2 s)
    _sgemm.set_enabled(True)
    assert _sgemm.enabled()


_SCRATCH_LIFETIME = """
import numpy as np
from hubkit.kernels import _jit, _sgemm
kernels = _sgemm.microkernels()
rng = np.random.default_rng(0)
for m, k, n in [(200, 384, 384), (512, 1536, 682), (12, 6144, 170)]:
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    _jit.compiled().sgemm(*kernels.functions, a, b, out, out[0], False)
    assert np.abs(out - a.astype(np.float64) @ b).max() < 1e-3
print("ok")
"""


@needs_kernel
def test_the_scratch_buffers_outlive_the_loops_that_use_their_addresses():
    """The packing buffers are reached through raw addresses only: numba must not free them early. With glibc's
    default allocator (no hubkit tuning: buffers of 128 KB and up are mmap'ed and unmapped when freed) a buffer
    freed too soon crashes the process instead of corrupting memory quietly, so run it in a process of its own."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, HUBKIT_MALLOC_TUNING="0")
    done = subprocess.run([sys.executable, "-c", _SCRATCH_LIFETIME], env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
