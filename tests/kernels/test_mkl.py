"""MKL's GEMM for the CPU products (``kernels._mkl``): the layouts it takes, its results against numpy's, and
what happens without it. The MKL tests need the ``mkl`` extra; CI's MKL stage sets HUBKIT_TEST_REQUIRE_MKL=1 so
that a missing library fails there instead of skipping."""

from __future__ import annotations

import os

import numpy as np
import pytest

import hubkit
from hubkit.backends import mkl as flags
from hubkit.kernels import _mkl, _threads

RNG = np.random.default_rng(5)


@pytest.fixture
def lib():
    if _mkl.library() is None:
        if os.environ.get("HUBKIT_TEST_REQUIRE_MKL") == "1":
            pytest.fail(f"MKL is required in this run but not available: {_mkl.unavailable_reason()}")
        pytest.skip(f"MKL is not installed here: {_mkl.unavailable_reason()}")
    return _mkl.library()


def _mat(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def test_layouts_that_blas_takes_without_a_copy():
    a = _mat(6, 5)
    assert _mkl._layout(a, 4) == (_mkl._NO_TRANS, 5)
    assert _mkl._layout(a.T, 4) == (_mkl._TRANS, 5)
    assert _mkl._layout(a[:, 1:4], 4) == (_mkl._NO_TRANS, 5)  # a column slice keeps the row pitch
    assert _mkl._layout(a[1:4].T, 4) == (_mkl._TRANS, 5)
    assert _mkl._layout(a[:, :1], 4) == (_mkl._NO_TRANS, 5)
    assert _mkl._layout(a[:1], 4) == (_mkl._NO_TRANS, 5)
    assert _mkl._layout(a[::2], 4) == (_mkl._NO_TRANS, 10)
    assert _mkl._layout(a[:, ::2], 4) is None  # neither rows nor columns are adjacent
    assert _mkl._layout(a[::-1], 4) is None
    assert _mkl._layout(np.broadcast_to(_mat(5), (6, 5)), 4) is None
    assert _mkl._layout(np.broadcast_to(_mat(6, 1), (6, 5)), 4) is None


CASES = [  # (name, a, b)
    ("contiguous", lambda t: _mat(70, 50, dtype=t), lambda t: _mat(50, 40, dtype=t)),
    ("a transposed", lambda t: _mat(50, 70, dtype=t).T, lambda t: _mat(50, 40, dtype=t)),
    ("b transposed", lambda t: _mat(70, 50, dtype=t), lambda t: _mat(40, 50, dtype=t).T),
    ("both transposed", lambda t: _mat(50, 70, dtype=t).T, lambda t: _mat(40, 50, dtype=t).T),
    ("slices", lambda t: _mat(80, 60, dtype=t)[5:75, 3:53], lambda t: _mat(60, 50, dtype=t)[5:55, 7:47]),
    ("one row", lambda t: _mat(1, 3000, dtype=t), lambda t: _mat(3000, 40, dtype=t)),
    ("one column", lambda t: _mat(500, 200, dtype=t), lambda t: _mat(200, 1, dtype=t)),
    ("batched", lambda t: _mat(3, 60, 40, dtype=t), lambda t: _mat(3, 40, 40, dtype=t)),
    ("batched, transposed", lambda t: _mat(3, 40, 60, dtype=t).transpose(0, 2, 1),
     lambda t: _mat(3, 40, 40, dtype=t).transpose(0, 2, 1)),  # fmt: skip
    ("batch of one", lambda t: _mat(1, 60, 50, dtype=t), lambda t: _mat(1, 50, 40, dtype=t)),
    ("one matrix against a batch", lambda t: _mat(40, 60, dtype=t), lambda t: _mat(5, 60, 30, dtype=t)),
    ("a batch against one matrix", lambda t: _mat(2, 3, 40, 60, dtype=t), lambda t: _mat(30, 60, dtype=t).T),
    ("broadcast batch axes", lambda t: _mat(1, 16, 150, dtype=t), lambda t: _mat(3, 1, 150, 60, dtype=t)),
    ("broadcast both ways", lambda t: _mat(3, 1, 40, 60, dtype=t), lambda t: _mat(1, 2, 60, 40, dtype=t)),
    ("4-d (attention heads)", lambda t: _mat(2, 3, 64, 32, dtype=t),
     lambda t: _mat(2, 3, 64, 32, dtype=t).swapaxes(-1, -2)),  # fmt: skip
    ("4-d, heads split from the features", lambda t: _mat(2, 64, 3, 32, dtype=t).transpose(0, 2, 1, 3),
     lambda t: _mat(2, 3, 32, 64, dtype=t)),  # fmt: skip
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "make_a", "make_b"), CASES, ids=[c[0] for c in CASES])
def test_mkl_products_match_numpy(lib, name, make_a, make_b, dtype):
    a, b = make_a(dtype), make_b(dtype)
    got = _mkl.matmul(a, b, None)
    assert got is not None, f"{name}: MKL declined a layout BLAS takes"
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=tol, atol=tol * 10)
    out = np.full(got.shape, np.nan, dtype=dtype)
    assert _mkl.matmul(a, b, out) is out
    np.testing.assert_allclose(out, got, rtol=tol, atol=tol)


def test_batch_axes_merge_only_without_a_copy():
    a = _mat(2, 3, 4, 5)
    merged = _mkl._merged(a)
    assert merged.shape == (6, 4, 5) and np.shares_memory(merged, a)
    np.testing.assert_array_equal(merged, a.reshape(6, 4, 5))
    assert _mkl._merged(a[:, :1]).shape == (2, 4, 5)  # a size-1 axis does not count
    assert _mkl._merged(_mat(1, 1, 4, 5)).shape == (1, 4, 5)
    assert _mkl._merged(_mat(2, 6, 4, 5)[:, ::2]) is not None  # strided, but still one step between matrices
    assert _mkl._merged(_mat(2, 5, 4, 5)[:, :3]) is None  # a gap after every third matrix
    assert _mkl._merged(a.transpose(1, 0, 2, 3)) is None


def test_into_a_slice_of_a_larger_output(lib):
    a, b = _mat(64, 48), _mat(48, 80)
    out = np.zeros((64, 100), dtype=np.float32)
    assert _mkl.matmul(a, b, out[:, 10:90]) is not None
    np.testing.assert_allclose(out[:, 10:90], a @ b, rtol=1e-5, atol=1e-4)
    assert not out[:, :10].any() and not out[:, 90:].any()


def test_what_mkl_leaves_to_numpy(lib, monkeypatch):
    a, b = _mat(64, 64), _mat(64, 64)
    assert _mkl.matmul(_mat(8, 8), _mat(8, 8), None) is None  # too small to pay for the call
    assert _mkl.matmul(a, b.astype(np.float64), None) is None  # mixed dtypes
    assert _mkl.matmul(a.astype(np.float16), b.astype(np.float16), None) is None
    assert _mkl.matmul(a.astype(np.int64), b.astype(np.int64), None) is None
    assert _mkl.matmul(a[:, ::2], b[::2], None) is None  # strides BLAS cannot express
    assert _mkl.matmul(a, b, np.empty((64, 64), dtype=np.float32).T) is None  # a column-ordered output
    buffer = _mat(64, 128)
    assert _mkl.matmul(buffer[:, :64], b, buffer[:, 64:]) is None  # the output overlaps an input
    assert _mkl.matmul(_mat(2, 64, 64), _mat(3, 64, 64), None) is None  # batch axes that do not broadcast
    assert _mkl.matmul(_mat(4, 64, 64)[:0], _mat(0, 64, 64), None) is None  # an empty batch
    # the threshold is per matrix: a batch of small products stays on numpy however large the batch, so a
    # kernel splitting it over threads uses one library for every image
    assert _mkl.matmul(_mat(64, 16, 16), _mat(64, 16, 16), None) is None
    monkeypatch.setattr(flags, "enabled", False)
    assert _mkl.matmul(a, b, None) is None


def test_hubkit_products_run_on_mkl_and_agree_with_numpy(lib, monkeypatch):
    calls = []
    real = _mkl.matmul
    monkeypatch.setattr(_mkl, "matmul", lambda *args: calls.append(1) or real(*args))
    x = hubkit.tensor(_mat(32, 300), requires_grad=True)
    layer = hubkit.nn.Linear(300, 200)
    y = layer(x)
    y.sum().backward()
    assert calls, "the Linear layer's products did not reach MKL"
    monkeypatch.setattr(flags, "enabled", False)
    x2 = hubkit.tensor(x.detach().numpy(), requires_grad=True)
    layer.zero_grad()
    y2 = layer(x2)
    y2.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), y2.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_threaded_products_split_over_the_pool_agree(lib, monkeypatch):
    """The pool's split (on numba's threads it calls MKL by function pointer: tests/kernels/test_native_split.py)."""
    calls = []
    real = _mkl.matmul
    monkeypatch.setattr(_mkl, "matmul", lambda *args: calls.append(1) or real(*args))
    monkeypatch.setattr(_threads, "_native_matmul", lambda *args: False)
    a, b = _mat(512, 256), _mat(256, 384)
    before = hubkit.get_num_threads()
    hubkit.set_num_threads(2)
    try:
        threaded = _threads.matmul(a, b)
    finally:
        hubkit.set_num_threads(before)
    assert calls  # one call per slice where hubkit splits the product, else one
    np.testing.assert_allclose(threaded, a @ b, rtol=1e-5, atol=1e-4)


def test_without_the_library_the_reason_says_how_to_install_it(monkeypatch):
    monkeypatch.delenv("HUBKIT_MKL", raising=False)
    monkeypatch.setenv("HUBKIT_MKL_LIBRARY", "/nonexistent/libmkl_rt.so.3")
    _mkl._reset_for_tests()
    try:
        assert not flags.is_available() and flags.version() is None
        reason = flags.unavailable_reason()
        assert "/nonexistent/libmkl_rt.so.3" in reason and "hubkit[mkl]" in reason
        assert _mkl.matmul(_mat(64, 64), _mat(64, 64), None) is None
        monkeypatch.setenv("HUBKIT_MKL", "0")
        _mkl._reset_for_tests()
        assert flags.unavailable_reason() == "HUBKIT_MKL=0 is set"
    finally:
        monkeypatch.undo()
        _mkl._reset_for_tests()


def test_every_chunk_of_a_split_batch_runs_on_mkl_as_the_whole_does(lib):
    # a kernel splitting its images over threads asks for (weights) @ (a chunk of images): the library must not
    # depend on the chunk (tests/kernels/test_threads.py checks the bits for any thread count)
    w, cols = _mat(1, 16, 150), _mat(7, 1, 150, 60)
    whole = _mkl.matmul(w, cols, None)
    parts = [_mkl.matmul(w, cols[i:j], None) for i, j in ((0, 1), (1, 3), (3, 7))]
    assert whole is not None and all(part is not None for part in parts)
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-6, atol=1e-5)
