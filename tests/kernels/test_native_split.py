"""Matrix products split over numba's threads (``_threads._native_matmul``, ``_jit_kernels.gemm_split_parallel``,
``kernels/_blas.py``) against the same split on hubkit's pool: same chunks and same BLAS routine, so the same
numbers, on both libraries (numpy's OpenBLAS, and MKL where the extra is installed); and the cases that must
fall back to the pool (layouts BLAS does not take, an output that overlaps an input)."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit.backends import mkl as mkl_flags
from hubkit.kernels import _blas, _jit, _mkl, _sgemm, _threads

RNG = np.random.default_rng(11)
needs_numba = pytest.mark.skipif(not _jit.available(), reason="numba is not installed: no compiled split")


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    monkeypatch.setattr(_sgemm, "_enabled", False)  # the float32 products here are BLAS's (test_sgemm.py: hubkit's)
    before = hubkit.get_num_threads()
    hubkit.set_num_threads(2)
    # a process that loaded torch's libgomp first keeps large jobs off numba's threads (_jit._spins_long)
    monkeypatch.setattr(_jit, "_spins_long", False)
    if _jit.available() and _jit.parallel_threads() < 2:
        hubkit.set_num_threads(before)
        pytest.skip("numba's parallel threads are not usable here (one core, or no thread-safe threading layer)")
    if not _threads._blas_owned:
        hubkit.set_num_threads(before)
        pytest.skip("OPENBLAS_NUM_THREADS (or OMP_/MKL_) is set: hubkit leaves products unsplit, to the BLAS")
    yield
    hubkit.set_num_threads(before)


@pytest.fixture(params=["numpy-blas", "mkl"])
def library(request, monkeypatch):
    """Both libraries the split may call: MKL switched off (numpy's OpenBLAS), and MKL where installed."""
    if request.param == "mkl":
        if _mkl.library() is None:
            pytest.skip(f"MKL is not installed here: {_mkl.unavailable_reason()}")
        monkeypatch.setattr(mkl_flags, "enabled", True)
    else:
        monkeypatch.setattr(mkl_flags, "enabled", False)
    return request.param


def _mat(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _spy(monkeypatch):
    calls = []
    real = _jit.compiled().gemm_split_parallel
    monkeypatch.setattr(_jit.compiled(), "gemm_split_parallel", lambda *a: calls.append(a[-1]) or real(*a))
    return calls


def _on_the_pool(monkeypatch, a, b, bias):
    """The same product with the compiled split refused: the pool runs it (forced to split at this size)."""
    with monkeypatch.context() as m:
        m.setattr(_threads, "_native_matmul", lambda *args: False)
        m.setattr(_threads, "_MATMUL_SPLIT_MIN_MACS", 0)
        return _threads.matmul(a, b, bias=bias)


# (M, K, N), a transposed in memory, b transposed in memory (Linear's W.T), bias
CASES = [
    ((512, 384, 384), False, True, True),  # MiniLM's attention projection: rows
    ((300, 257, 129), False, False, False),  # odd sizes, both plain
    ((96, 200, 700), True, False, True),  # a transposed (Linear's weight gradient), few rows: columns
    ((33, 512, 1000), True, True, False),
]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, a_t, b_t, with_bias", CASES)
def test_the_compiled_split_gives_the_pools_numbers(library, monkeypatch, shape, a_t, b_t, with_bias, dtype):
    m, k, n = shape
    a = _mat(k, m, dtype=dtype).T if a_t else _mat(m, k, dtype=dtype)
    b = _mat(n, k, dtype=dtype).T if b_t else _mat(k, n, dtype=dtype)
    bias = _mat(n, dtype=dtype) if with_bias else None
    calls = _spy(monkeypatch)
    got = _threads.matmul(a, b, bias=bias)
    assert calls, "the product did not take the compiled split"
    assert calls[0] == (m >= 8 * 2 or m >= n)  # rows, or columns for a short wide product
    want = _on_the_pool(monkeypatch, a, b, bias)
    np.testing.assert_array_equal(got, want)  # same chunks, same routine
    exact = a.astype(np.float64) @ b.astype(np.float64) + (0 if bias is None else bias)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, exact, rtol=tol, atol=tol * 10)


@needs_numba
def test_the_split_calls_the_library_the_pool_would(library, monkeypatch):
    """MKL's pointer where MKL takes the chunks, numpy's OpenBLAS otherwise."""
    asked = []
    real_mkl, real_open = _blas.mkl_gemm, _blas.openblas_gemm
    monkeypatch.setattr(_blas, "mkl_gemm", lambda char: asked.append("mkl") or real_mkl(char))
    monkeypatch.setattr(_blas, "openblas_gemm", lambda char: asked.append("numpy-blas") or real_open(char))
    a, b = _mat(512, 384), _mat(384, 384)
    np.testing.assert_allclose(_threads.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
    assert asked == [library]


@needs_numba
def test_numpys_openblas_is_found():
    info = [lib for lib in __import__("threadpoolctl").threadpool_info() if lib.get("internal_api") == "openblas"
            and "numpy" in lib["filepath"]]  # fmt: skip
    if not info:
        pytest.skip("numpy here does not use OpenBLAS")
    assert _blas.openblas_gemm("f") is not None and _blas.openblas_gemm("d") is not None


@needs_numba
def test_layouts_blas_cannot_take_and_overlaps_fall_back_to_the_pool(monkeypatch):
    calls = _spy(monkeypatch)
    a = _mat(512, 800)[:, ::2]  # every other column: no unit stride
    b = _mat(400, 384)
    np.testing.assert_allclose(_threads.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
    assert calls == []
    square = _mat(512, 512)
    np.testing.assert_allclose(_threads.matmul(square, square.copy(), out=np.empty_like(square)), square @ square,
                               rtol=1e-4, atol=1e-3)  # fmt: skip
    assert calls == [True]  # a plain product takes the split
    expected = square @ square
    got = _threads.matmul(square, square.copy(), out=square)  # the output is the input
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    assert calls == [True]


@needs_numba
def test_a_linear_layer_takes_the_split_and_matches_one_thread(monkeypatch):
    calls = _spy(monkeypatch)
    layer = hubkit.nn.Linear(384, 384)
    x = hubkit.tensor(_mat(16, 32, 384), requires_grad=True)
    weights = hubkit.tensor(_mat(16, 32, 384))
    y = layer(x)
    (y * weights).sum().backward()
    assert len(calls) == 3  # the forward product and both gradients' products
    got = (y.detach().numpy(), x.grad.numpy(), layer.weight.grad.numpy())
    hubkit.set_num_threads(1)
    x2 = hubkit.tensor(x.detach().numpy(), requires_grad=True)
    layer.zero_grad()
    y2 = layer(x2)
    (y2 * weights).sum().backward()
    for g, w in zip(got, (y2.detach().numpy(), x2.grad.numpy(), layer.weight.grad.numpy())):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)
