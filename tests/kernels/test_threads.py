"""hubkit's CPU kernel thread pool: same results for any thread count, off at 1 thread, safe after fork."""

from __future__ import annotations

import multiprocessing
import os
import threading

import numpy as np
import pytest

import hubkit
from hubkit.errors import ArgumentError, HubkitError
from hubkit.kernels import _cpu_util, _threads, cpu, cpu_conv

RNG = np.random.default_rng(0)

# (N, C, H, W), (OC, KH, KW), stride, pads, groups: LeNet's layers, a strided grouped conv and a pointwise one
THREAD_CONV_CASES = [
    ((7, 1, 12, 12), (6, 5, 5), (1, 1), ((2, 2), (2, 2)), 1),
    ((7, 6, 10, 10), (16, 5, 5), (1, 1), ((0, 0), (0, 0)), 1),
    ((5, 4, 11, 9), (6, 3, 3), (2, 1), ((1, 0), (1, 1)), 2),
    ((5, 4, 6, 6), (8, 1, 1), (2, 2), ((0, 0), (0, 0)), 1),
]


@pytest.fixture
def threads(monkeypatch):
    """Set hubkit's thread count for one test (every batch split: no minimum work per thread)."""
    monkeypatch.setattr(_cpu_util, "_PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_threads, "_num_threads", None)
    monkeypatch.delenv("HUBKIT_NUM_THREADS", raising=False)
    return hubkit.set_num_threads


def _conv_results(x, w, b, stride, pads, groups):
    args = (stride, pads, (1, 1), groups)
    y, columns = cpu.conv2d(x, w, b, *args, keep_columns=True)
    gy = np.cos(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
    return [
        y,
        cpu.conv2d_grad_input(gy, w, x.shape[2:], *args),
        cpu.conv2d_grad_weight(x, gy, w.shape[2:], *args, columns=columns),
        cpu.conv2d_grad_weight(x, gy, w.shape[2:], *args),
    ]


@pytest.mark.parametrize("path", ["wide", "chunked"])
@pytest.mark.parametrize("xs, ws, stride, pads, groups", THREAD_CONV_CASES)
def test_threaded_conv_equals_single_thread_bit_for_bit(xs, ws, stride, pads, groups, path, threads, monkeypatch):
    if path == "chunked":
        monkeypatch.setattr(cpu_conv, "_WIDE_MAX_ROWS", 0)
        monkeypatch.setattr(cpu_conv, "_COL_CHUNK_BYTES", 1)  # one image per im2col chunk: several chunks per thread
        monkeypatch.setattr(cpu_conv, "_GEMM_MIN_COLUMNS", 1)
    x = RNG.standard_normal(xs).astype(np.float32)
    w = RNG.standard_normal((ws[0], xs[1] // groups, ws[1], ws[2])).astype(np.float32)
    b = RNG.standard_normal(ws[0]).astype(np.float32)
    threads(1)
    serial = _conv_results(x, w, b, stride, pads, groups)
    for n in (2, 3):  # 3 threads: uneven chunks of the odd batch
        threads(n)
        for got, want in zip(_conv_results(x, w, b, stride, pads, groups), serial):
            assert got.dtype == want.dtype == np.float32
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape", [(7, 3, 8, 8), (5, 2, 9, 7)])
def test_threaded_2x2_max_pool_equals_single_thread(shape, threads):
    x = RNG.integers(0, 3, size=shape).astype(np.float32)  # many ties: the first maximum must win everywhere
    args = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    threads(1)
    y, arg = cpu.max_pool2d(x, *args, with_argmax=True)
    gy = RNG.standard_normal(y.shape).astype(np.float32)
    gx = cpu.max_pool2d_backward(gy, arg, shape[2:], *args)
    threads(2)
    y2, arg2 = cpu.max_pool2d(x, *args, with_argmax=True)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(arg2, arg)
    np.testing.assert_array_equal(cpu.max_pool2d_backward(gy, arg2, shape[2:], *args), gx)
    np.testing.assert_array_equal(cpu.max_pool2d(x, *args, with_argmax=False)[0], y)


def test_one_thread_runs_every_chunk_on_the_calling_thread(threads):
    threads(1)
    seen = []
    assert _threads.parallel_for(8, lambda a, b: seen.append((a, b, threading.get_ident())) or a) == [0]
    assert seen == [(0, 8, threading.get_ident())]
    threads(4)
    seen.clear()
    assert _threads.parallel_for(8, lambda a, b: seen.append((a, b, threading.get_ident())) or a, 2) == [0, 2, 4, 6]
    assert sorted(s[:2] for s in seen) == [(0, 2), (2, 4), (4, 6), (6, 8)]  # each chunk once, results in order


def test_work_that_allows_it_gets_spare_chunks_for_whichever_thread_is_free(threads):
    threads(2)
    assert _threads.chunk_bounds(8, 1) == [(0, 2), (2, 4), (4, 6), (6, 8)]  # 2 per thread
    assert _threads.chunk_bounds(8, 3) == [(0, 4), (4, 8)]  # too little work for spares
    assert _threads.parallel_for(9, lambda a, b: (a, b)) == [(0, 3), (3, 5), (5, 7), (7, 9)]


def test_chunks_run_on_several_threads_at_once(threads):
    threads(2)
    started = [threading.Event(), threading.Event()]

    def body(a, b):
        # each chunk waits until the other one has started: only possible on two threads at once
        started[a].set()
        assert started[1 - a].wait(timeout=30), "the other chunk never ran concurrently"
        return threading.get_ident()

    idents = _threads.parallel_for(2, body)
    assert len(set(idents)) == 2


def test_the_caller_takes_over_chunks_a_busy_pool_has_not_started(threads):
    threads(2)
    release = threading.Event()
    blocker = _threads._executor(1).submit(release.wait, 30)  # the one pool thread is busy elsewhere
    try:
        idents = _threads.parallel_for(4, lambda a, b: threading.get_ident())
        assert idents == [threading.get_ident()] * 4  # every chunk ran here, nothing waited for the pool
    finally:
        release.set()
        blocker.result()


def test_chunks_respect_minimum_size_and_work_nested_in_a_chunk_does_not_split_again(threads):
    threads(4)
    assert _threads.chunk_bounds(10, min_items=4) == [(0, 5), (5, 10)]
    assert _threads.chunk_bounds(3, min_items=4) == [(0, 3)]
    # chunks run on the calling thread and on pool threads: none of them splits again
    inner = _threads.parallel_for(2, lambda a, b: _threads.chunk_bounds(8, 2))
    assert inner == [[(0, 8)], [(0, 8)]]
    assert _threads.chunk_bounds(8, 2) == [(0, 2), (2, 4), (4, 6), (6, 8)]  # and the caller is free again


def test_errors_in_a_pool_chunk_reach_the_caller_after_all_chunks_finished(threads):
    threads(2)
    done = []

    def body(a, b):
        if a:
            raise ArgumentError("chunk failed")
        done.append(a)

    with pytest.raises(ArgumentError, match="chunk failed"):
        _threads.parallel_for(4, body)
    assert done == [0]


def test_set_num_threads_validates_and_get_num_threads_reads_env(threads, monkeypatch):
    threads(3)
    assert hubkit.get_num_threads() == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ArgumentError, match="positive int"):
            hubkit.set_num_threads(bad)
    monkeypatch.setattr(_threads, "_num_threads", None)
    monkeypatch.setenv("HUBKIT_NUM_THREADS", "5")
    assert hubkit.get_num_threads() == 5
    monkeypatch.setattr(_threads, "_num_threads", None)
    monkeypatch.setenv("HUBKIT_NUM_THREADS", "many")
    with pytest.raises(HubkitError, match="HUBKIT_NUM_THREADS"):
        hubkit.get_num_threads()


def _numpy_blas_threads():
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]


@pytest.fixture
def fresh_default(monkeypatch):
    """Forget the thread decision (restored after the test) and clear the variables it reads."""
    monkeypatch.delenv("HUBKIT_NUM_THREADS", raising=False)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_threads, "_num_threads", None)
    monkeypatch.setattr(_threads, "_blas_owned", _threads._blas_owned)
    return monkeypatch


def test_by_default_hubkit_owns_the_cores_and_sets_numpy_blas_to_one_thread(fresh_default):
    pytest.importorskip("threadpoolctl")
    assert hubkit.get_num_threads() == max(1, min(_threads._usable_cores(), 8))
    assert _threads._blas_owned
    assert _numpy_blas_threads() and set(_numpy_blas_threads()) == {1}


def test_a_blas_thread_variable_set_by_the_user_is_respected(fresh_default):
    fresh_default.setenv("OPENBLAS_NUM_THREADS", "1")
    assert hubkit.get_num_threads() == max(1, min(_threads._usable_cores(), 8))
    assert not _threads._blas_owned
    fresh_default.setattr(_threads, "_num_threads", None)
    fresh_default.setenv("OPENBLAS_NUM_THREADS", "2")
    assert hubkit.get_num_threads() == 1  # the BLAS has the cores: the pool stays off
    assert not _threads._blas_owned


def test_without_threadpoolctl_the_pool_stays_off(fresh_default):
    fresh_default.setattr(_threads, "_numpy_blas_controllers", lambda: [])
    fresh_default.setattr(_threads, "_blas_owned", False)
    assert hubkit.get_num_threads() == 1


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((300, 70), (70, 90)), ((5, 40, 33), (5, 33, 60)), ((1, 3, 200, 64), (1, 3, 64, 2)), ((3, 8), (8, 500))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_matmul_matches_numpy(a_shape, b_shape, dtype, threads, monkeypatch):
    monkeypatch.setattr(_threads, "_MATMUL_SPLIT_MIN_MACS", 1)
    monkeypatch.setattr(_threads, "_blas_owned", True)
    a = RNG.standard_normal(a_shape).astype(dtype)
    b = RNG.standard_normal(b_shape).astype(dtype)
    want = np.matmul(a, b)
    for n in (1, 2, 3):
        threads(n)
        got = _threads.matmul(a, b)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
        # a transposed operand and an explicit contiguous out
        out = np.empty_like(want.swapaxes(-1, -2))
        np.testing.assert_allclose(_threads.matmul(b.swapaxes(-1, -2), a.swapaxes(-1, -2), out=out),
                                   want.swapaxes(-1, -2), rtol=1e-5, atol=1e-5)  # fmt: skip


def test_threaded_matmul_leaves_broadcasting_and_vectors_to_numpy(threads, monkeypatch):
    monkeypatch.setattr(_threads, "_MATMUL_SPLIT_MIN_MACS", 1)
    monkeypatch.setattr(_threads, "_blas_owned", True)
    threads(2)
    a, b, v = RNG.standard_normal((4, 5, 6)), RNG.standard_normal((6, 7)), RNG.standard_normal(6)
    np.testing.assert_allclose(_threads.matmul(a, b), a @ b)
    np.testing.assert_allclose(_threads.matmul(a, v), a @ v)


def _conv_in_child(queue):
    x = np.arange(4 * 6 * 10 * 10, dtype=np.float32).reshape(4, 6, 10, 10) % 7
    w = np.ones((16, 6, 5, 5), dtype=np.float32)
    queue.put((os.getpid(), cpu.conv2d(x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_works_in_a_forked_child_after_the_parent_used_it(threads):
    threads(2)
    x = np.arange(4 * 6 * 10 * 10, dtype=np.float32).reshape(4, 6, 10, 10) % 7
    w = np.ones((16, 6, 5, 5), dtype=np.float32)
    want = cpu.conv2d(x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert _threads._pool is not None  # the parent's pool exists and has threads
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_conv_in_child, args=(queue,))
    child.start()
    pid, got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and pid != os.getpid()
    np.testing.assert_array_equal(got, want)


def test_import_starts_no_threads():
    code = (
        "import threading, hubkit, hubkit.nn, hubkit.nn.functional; "
        "print(sorted(t.name for t in threading.enumerate()))"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['MainThread']"


def test_changing_the_thread_count_while_other_threads_run_kernels(threads):
    x = RNG.standard_normal((6, 6, 10, 10)).astype(np.float32)
    w = RNG.standard_normal((16, 6, 5, 5)).astype(np.float32)
    args = ((1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    threads(1)
    want = cpu.conv2d(x, w, None, *args)
    errors, results = [], []

    def work():
        try:
            for _ in range(30):
                results.append(cpu.conv2d(x, w, None, *args))
        except Exception as exc:  # noqa: BLE001  (reported by the assert below)
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for t in workers:
        t.start()
    for n in [2, 3, 1, 4] * 10:
        hubkit.set_num_threads(n)
    for t in workers:
        t.join()
    assert errors == [] and len(results) == 90
    for got in results:
        np.testing.assert_array_equal(got, want)
