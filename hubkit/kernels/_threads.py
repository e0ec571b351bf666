"""The CPU kernels' thread pool: ``hubkit.set_num_threads`` / ``hubkit.get_num_threads``.

Some CPU kernels split their batch into contiguous chunks and run the chunks on a small pool of threads
(numpy's ufuncs and copies, OpenBLAS and the compiled kernels release the GIL). Each chunk writes a disjoint
slice of an output allocated before the split, and reductions across chunks happen after the split in a
fixed order, so results do not depend on the thread count or on timing.

The pool is created on first use, never at import time, and again in a child process after ``fork``
(a forked child has none of its parent's threads; DataLoader workers are forked). A kernel called from a
pool thread runs its chunks serially, so the pool never waits on itself.

Who owns the cores is decided once, on first use (see ``get_num_threads``). By default hubkit owns them:
numpy's BLAS is set to one thread at run time (threadpoolctl) and large matrix products are split over the
pool instead (:func:`matmul`). OpenBLAS's own workers spin after every threaded call and take the core the
pool needs, and on a machine shared with other jobs the spinning turns a 5 ms step into 20-30 ms for
everyone (bench/RESULTS.md); pool threads block instead of spinning, so a busy machine slows them down
gracefully. Setting ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` before numpy loads
opts out: hubkit then leaves the BLAS alone and runs its pool only when the BLAS has one thread.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from hubkit.errors import ArgumentError
from hubkit.kernels import _mkl

T = TypeVar("T")

# Default thread count cap: the kernels split batches of tens of images; past a handful of threads the
# chunks get too small to pay for the hand-off.
_DEFAULT_MAX_THREADS = 8
_ENV_VAR = "HUBKIT_NUM_THREADS"

# Products with fewer multiply-adds than this run as one BLAS call: below it the hand-off to a pool thread
# (tens of microseconds with the GIL) costs more than the second core gains. Measured on 2 cores (Zen 3,
# float32): split products of 19-58M multiply-adds took 0.62-0.88x the serial time, 12.8M ones 0.89-1.04x
# (batch-1 convolutions and mid-sized Linear layers fall in between; 1 << 26 left them on one core).
_MATMUL_SPLIT_MIN_MACS = 1 << 24
# Where the work allows it, each thread's share is cut into this many chunks, claimed by whichever thread is
# free: on a machine shared with other jobs a descheduled pool thread then holds up less of the step.
_CHUNKS_PER_THREAD = 2

_lock = threading.Lock()
_num_threads: int | None = None  # None until first asked: then HUBKIT_NUM_THREADS or the usable cores
_blas_owned = False  # whether hubkit set numpy's BLAS to one thread (and splits large products itself)
_blas_single = False  # whether numpy's BLAS runs one thread (hubkit's doing or the user's): MKL may stand in
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0
_in_pool = threading.local()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _blas_env_threads() -> str | None:
    """What the user told numpy's BLAS (before it loaded) about threads, or None when nothing was set."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _numpy_blas_controllers() -> list:
    """threadpoolctl's controllers for numpy's BLAS (the libraries under numpy's install, else every BLAS
    loaded), or [] without threadpoolctl. Other libraries' BLAS (torch's) are left alone when numpy's is
    found."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    home = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    own = [lib for lib in libs if os.path.abspath(lib.filepath).startswith(os.path.join(home, "numpy"))]
    return own or libs


def _take_blas_threads() -> bool:
    """Set numpy's BLAS to one thread so the pool owns the cores; False when that cannot be done."""
    global _blas_owned, _blas_single
    controllers = _numpy_blas_controllers()
    for lib in controllers:
        lib.set_num_threads(1)
    _blas_owned = bool(controllers)
    _blas_single = _blas_single or _blas_owned
    return _blas_owned


def _threads_from_env() -> int:
    global _blas_owned, _blas_single
    _blas_owned = False
    value = os.environ.get(_ENV_VAR, "").strip()
    cores = max(1, min(_usable_cores(), _DEFAULT_MAX_THREADS))
    blas = _blas_env_threads()
    _blas_single = blas == "1"
    if not value:
        if blas is not None:
            return cores if blas == "1" else 1
        return cores if _take_blas_threads() else 1
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ArgumentError(
            f"{_ENV_VAR} must be a positive whole number of threads, found {value!r}; "
            f"set it to e.g. 1 or 2, or unset it to use the usable cores (at most {_DEFAULT_MAX_THREADS})"
        )
    if blas is None:
        _take_blas_threads()
    return n


def get_num_threads() -> int:
    """The number of threads hubkit's CPU kernels use (this thread included); 1 means no pool.

    Decided on first use: ``HUBKIT_NUM_THREADS`` when set, else the cores this process may run on (at
    most 8). Unless the user fixed numpy's BLAS threads through ``OPENBLAS_NUM_THREADS`` (or
    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``), hubkit then sets that BLAS to one thread at run time
    (threadpoolctl) and splits large products over its own pool: a multi-threaded OpenBLAS keeps its idle
    workers spinning after each threaded call, and they take the cores the pool would use (measured in
    bench/RESULTS.md). When the user did fix the BLAS threads, the pool runs only if that is one thread;
    without threadpoolctl the pool stays off.
    """
    global _num_threads
    if _num_threads is None:
        with _lock:
            if _num_threads is None:
                from hubkit.kernels import _malloc

                _malloc.tune()  # the other process-wide setting made on first kernel use
                _num_threads = _threads_from_env()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (this thread included) in hubkit's CPU kernels; ``1`` turns the pool off.

    Numpy's BLAS stays at one thread when hubkit owns it (the default, see :func:`get_num_threads`): large
    products are split over the ``n`` threads instead. When ``OPENBLAS_NUM_THREADS`` (or ``OMP``/``MKL``)
    was set, the BLAS keeps what that variable said.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ArgumentError(f"set_num_threads expects a positive int, found {n!r}; pass e.g. 1 or os.cpu_count()")
    get_num_threads()  # decide once who owns the BLAS threads
    with _lock:
        _num_threads = n  # the pool is resized when next used with more than one thread


def _mark_pool_thread() -> None:
    _in_pool.active = True


def in_pool_thread() -> bool:
    """Whether this thread is running chunks of a :func:`parallel_for` (a pool thread, or the caller while it
    takes part): work started here must run serially."""
    return getattr(_in_pool, "active", False)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size != workers:
            # An old pool is dropped, not shut down: a caller on another thread may still be submitting
            # to it; its threads exit once it is garbage collected.
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="hubkit-kernel", initializer=_mark_pool_thread)
            _pool_size, _pool_pid = workers, os.getpid()
        return _pool


def _forget_pool_after_fork() -> None:
    # The child inherits the pool object but not its threads, and maybe a held lock.
    global _lock, _pool, _pool_size
    _lock = threading.Lock()
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def chunk_bounds(n: int, min_items: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into up to ``get_num_threads()`` contiguous ``(start, stop)`` chunks of at least
    ``min_items`` items each (one chunk when that is not possible or when called from a pool thread)."""
    threads = get_num_threads()
    chunks = min(threads, n // max(min_items, 1))
    if chunks <= 1 or getattr(_in_pool, "active", False):
        return [(0, n)]
    if n // max(min_items, 1) >= _CHUNKS_PER_THREAD * threads:
        chunks = _CHUNKS_PER_THREAD * threads  # spare chunks for whichever thread is free (see parallel_for)
    return _split_ranges(n, chunks)


def parallel_for(n: int, body: Callable[[int, int], T], min_items: int = 1) -> list[T]:
    """Run ``body(start, stop)`` over the chunks of :func:`chunk_bounds` and return the results in chunk
    order; every chunk has finished when this returns, also when one raised (the first error in chunk
    order is re-raised).

    The calling thread and the pool threads claim chunks in turn until none is left, so a pool thread that
    a busy machine does not schedule in time leaves its chunk to the caller instead of making it wait: the
    step then runs at one thread's speed, not slower (the chunk boundaries, and so the results, stay the
    same whoever runs them)."""
    bounds = chunk_bounds(n, min_items)
    if len(bounds) == 1:
        return [body(0, n)]
    results: list = [None] * len(bounds)
    errors: list[BaseException | None] = [None] * len(bounds)
    claim = itertools.count()  # next() is atomic under the GIL

    def run_chunks() -> None:
        while (i := next(claim)) < len(bounds):
            try:
                results[i] = body(*bounds[i])
            except BaseException as exc:  # noqa: BLE001  (re-raised below, after every chunk finished)
                errors[i] = exc

    pool = _executor(get_num_threads() - 1)
    futures: list[Future[None]] = [pool.submit(run_chunks) for _ in bounds[1:]]
    # while it runs chunks, the calling thread counts as a pool thread: work nested in a chunk (a product in
    # a conv kernel) runs serially instead of queueing behind the other chunks
    _in_pool.active = True
    try:
        run_chunks()
    finally:
        _in_pool.active = False
    for future in futures:
        if not future.cancel():  # a task that never started has nothing left to claim: it is dropped
            future.result()
    for error in errors:
        if error is not None:
            raise error
    return results


def _split_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _gemm(a: Any, b: Any, out: Any) -> Any:
    """``np.matmul(a, b, out=out)`` on one thread: MKL's where it is installed and takes the operands
    (``kernels._mkl``), else numpy's BLAS. MKL only stands in where numpy's BLAS runs one thread anyway."""
    if _blas_single:
        done = _mkl.matmul(a, b, out)
        if done is not None:
            return done
    return np.matmul(a, b, out=out)


def _serial_matmul(a: Any, b: Any, out: Any, bias: Any) -> Any:
    out = _gemm(a, b, out)
    if bias is not None:
        out += bias
    return out


def matmul(a: Any, b: Any, out: Any = None, bias: Any = None) -> Any:
    """``a @ b`` for numpy arrays (2-d, or batched ``(..., M, K) @ (..., K, N)`` of equal batch shapes), with
    large products split over the pool when hubkit owns the BLAS threads (see :func:`get_num_threads`).

    The split is over the batch when it has at least as many entries as there are threads, else over the
    rows of ``a`` (or the columns of ``b`` when ``a`` has few rows); every thread writes its own slice of
    one output array with a single-threaded BLAS call. Broadcast batch shapes, 1-d operands and a
    non-contiguous ``out`` take numpy's own path. ``bias`` (N,), when given, is added to every row of the
    result (by each thread to its own slice, while it is still in cache: Linear's ``x @ W.T + b``)."""
    threads = get_num_threads()  # also decides who owns the BLAS threads (_blas_owned, _blas_single)
    if not _blas_owned:
        threads = 1
    done = _sgemm_product(a, b, out, bias, threads)
    if done is not None:
        return done
    if (
        threads <= 1
        or a.ndim < 2
        or b.ndim < 2
        or a.shape[:-2] != b.shape[:-2]
        or (out is not None and not out.flags.c_contiguous)
        or getattr(_in_pool, "active", False)
    ):
        return _serial_matmul(a, b, out, bias)
    (m, k), n = a.shape[-2:], b.shape[-1]
    count = a.size // max(m * k, 1)
    macs = count * m * k * n
    native = count == 1 and macs >= _NATIVE_SPLIT_MIN_MACS and _native_ready(a, b, out, bias)
    if macs < _MATMUL_SPLIT_MIN_MACS and not native:
        return _serial_matmul(a, b, out, bias)
    if out is None:
        out = np.empty(a.shape[:-1] + (n,), dtype=np.result_type(a, b))
    by_rows = m >= 8 * threads or m >= n
    if native and _native_matmul(a.reshape(m, k), b.reshape(k, n), out.reshape(m, n), bias,
                                 _split_ranges(m if by_rows else n, threads), by_rows):  # fmt: skip
        return out
    a3, b3, o3 = a.reshape(count, m, k), b.reshape(count, k, n), out.reshape(count, m, n)
    everything = slice(None)
    if count >= threads:
        parts = [(slice(i, j), everything, everything) for i, j in _split_ranges(count, threads)]
    elif by_rows:
        parts = [(everything, slice(i, j), everything) for i, j in _split_ranges(m, threads)]
    else:
        parts = [(everything, everything, slice(i, j)) for i, j in _split_ranges(n, threads)]

    def product(p0: int, p1: int) -> None:
        for bi, ri, ci in parts[p0:p1]:
            _gemm(a3[bi, ri], b3[bi, :, ci], o3[bi, ri, ci])
            if bias is not None:
                o3[bi, ri, ci] += bias[ci]

    parallel_for(len(parts), product)
    return out


# ---------------------------------------------------------------- the split on numba's threads (kernels/_blas.py)
# Where numba's threads are usable, a split 2-d product runs as one compiled call that hands each chunk to the
# BLAS routine the pool would have called (same chunks, same library, so the same numbers), without the pool's
# 0.2-0.4 ms hand-off: MiniLM's 384 x 384 layer at 512 rows took 0.63 ms on the pool, 0.37 ms this way (one
# thread: 0.75 ms). The hand-off being microseconds, products down to this size are split too: 6.1M
# multiply-adds (128 x 400 x 120) took 0.71-0.79x the one-thread time, 16.8M 0.38-0.72x; 3.1M (LeNet-5's first
# Linear) 0.82-1.03x, and its training step was 2-5% slower split, so it stays on one thread.
_NATIVE_SPLIT_MIN_MACS = 1 << 22


def _native_ready(a: Any, b: Any, out: Any, bias: Any) -> bool:
    """Whether a product (one matrix, possibly with batch axes of size 1) may go to the compiled split at all (the
    rest is checked by :func:`_native_matmul`)."""
    from hubkit.kernels import _jit

    return (a.dtype == b.dtype and a.dtype.char in "fd"
            and (out is None or out.dtype == a.dtype) and (bias is None or bias.dtype == a.dtype)
            and _jit.compiled() is not None)  # fmt: skip


def _native_matmul(a: Any, b: Any, out: Any, bias: Any, bounds: list[tuple[int, int]], by_rows: bool) -> bool:
    """``out = a @ b (+ bias)`` split into ``bounds`` of rows (``by_rows``) or columns, on numba's threads;
    False (nothing written) where that is not possible: numba's threads unusable here, a layout BLAS cannot
    take, no function pointer for the library the pool would use, or chunks that would use different ones."""
    from hubkit.kernels import _blas, _jit

    (m, k), n = a.shape, b.shape[1]
    if len(bounds) < 2 or 0 in (m, n, k) or not out.flags.c_contiguous:
        return False
    if _jit.parallel_threads(a.nbytes + b.nbytes + out.nbytes) < 2:
        return False
    if np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return False
    size = a.itemsize
    la, lb = _mkl._layout(a, size), _mkl._layout(b, size)
    if la is None or lb is None:
        return False
    # the library each chunk would get from _gemm: MKL for chunk matrices it takes, else numpy's BLAS
    sizes = {(stop - start) * (n * k if by_rows else m * k) for start, stop in bounds}
    takes = {_blas_single and _mkl.would_take(a.dtype.char, macs) for macs in sizes}
    if len(takes) != 1:
        return False
    gemm = _blas.mkl_gemm(a.dtype.char) if takes.pop() else (_blas.openblas_gemm(a.dtype.char) if _blas_single
                                                             else None)  # fmt: skip
    if gemm is None:
        return False
    step_a = la[1] * size if la[0] == _mkl._NO_TRANS else size
    step_b = size if lb[0] == _mkl._NO_TRANS else lb[1] * size
    starts = np.array([start for start, _ in bounds] + [bounds[-1][1]], dtype=np.int64)
    use_bias = bias is not None
    _jit.compiled().gemm_split_parallel(gemm, la[0], lb[0], m, n, k, _mkl._data(a), la[1], step_a, _mkl._data(b),
                                        lb[1], step_b, out, bias if use_bias else out[0], use_bias, starts,
                                        by_rows)  # fmt: skip
    return True


# ---------------------------------------------------------------- hubkit's float32 kernel (kernels/_sgemm.py)
# Where it compiles (AVX-512 and numba), float32 products that BLAS would run on one thread per chunk go to
# hubkit's own kernel instead: 1.05-1.2x OpenBLAS's speed on the transformer and convolution shapes measured
# (bench/RESULTS.md). MKL, where installed, keeps them: it is as fast. Whether the kernel takes a product
# depends on the product's shape only, never on the thread count, so results do not change with the threads.
_SGEMM_MIN_MACS = 1 << 18
_SGEMM_BATCH_MIN_MACS = 1 << 22  # per matrix of a batch (one Python call each, about 15 us)
# the share of each 12 x 32 block that must be real rows and columns (a 10-column classifier fills a third of
# one: BLAS's edge handling is better there)
_SGEMM_MIN_FILL = 0.75


def _sgemm_fill(m: int, n: int) -> float:
    return m / (-(-m // 12) * 12) * n / (-(-n // 32) * 32)


def _sgemm_product(a: Any, b: Any, out: Any, bias: Any, threads: int) -> Any:
    """``a @ b (+ bias)`` on hubkit's float32 kernel, or None (nothing written) where that kernel does not take
    the product: other types, small or ragged matrices, batch shapes that do not broadcast, an ``out`` that is not
    C-ordered or overlaps an operand, MKL installed, numpy's BLAS running several threads of its own, or no
    compiled kernel here (:func:`hubkit.kernels._sgemm.microkernels`). Batch axes broadcast as numpy's do (a
    convolution's weights against a batch of column matrices); each matrix is one kernel call."""
    if not _blas_single or a.dtype != np.float32 or b.dtype != np.float32 or min(a.ndim, b.ndim) < 2:
        return None
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    if k != k2 or m * n * k < _SGEMM_MIN_MACS or _sgemm_fill(m, n) < _SGEMM_MIN_FILL:
        return None
    batch = a.shape[:-2]
    if b.shape[:-2] != batch:
        try:
            batch = np.broadcast_shapes(batch, b.shape[:-2])
        except ValueError:
            return None
    if out is not None and (out.dtype != np.float32 or not out.flags.c_contiguous or out.shape != batch + (m, n)
                            or np.may_share_memory(out, a) or np.may_share_memory(out, b)):  # fmt: skip
        return None
    if bias is not None and (bias.dtype != np.float32 or bias.shape != (n,)):
        return None
    if not (a.flags.aligned and b.flags.aligned) or _mkl.usable("f"):
        return None
    from hubkit.kernels import _jit, _sgemm

    compiled = _jit.compiled()  # numba first: without it the kernel would be compiled for nothing
    kernels = _sgemm.microkernels() if compiled is not None else None
    if kernels is None or compiled is None:
        return None
    if math.prod(batch) > 1 and m * n * k < _SGEMM_BATCH_MIN_MACS:  # a Python call per matrix: small ones to BLAS
        return None
    if out is None:
        out = np.empty(batch + (m, n), dtype=np.float32)
    use_bias = bias is not None
    bias = np.ascontiguousarray(bias) if use_bias else out.reshape(-1, n)[0]
    if a.shape[:-2] == b.shape[:-2] and out.size == m * n:  # one matrix
        _sgemm_matrix(compiled, kernels, a.reshape(m, k), b.reshape(k, n), out.reshape(m, n), bias, use_bias, threads)
        return out
    a_all, b_all = np.broadcast_to(a, batch + (m, k)), np.broadcast_to(b, batch + (k, n))
    for index in np.ndindex(*batch):
        _sgemm_matrix(compiled, kernels, a_all[index], b_all[index], out[index], bias, use_bias, threads)
    return out


def _sgemm_matrix(compiled: Any, kernels: Any, a: Any, b: Any, out: Any, bias: Any, use_bias: bool,
                  threads: int) -> None:  # fmt: skip
    """One (M, K) @ (K, N) product on the kernel, split over numba's threads where they are usable."""
    from hubkit.kernels import _jit

    m, n = out.shape
    parts = min(threads, _jit.parallel_threads(a.nbytes + b.nbytes + out.nbytes)) if threads > 1 else 1
    slivers = -(-n // 32)
    # by rows (each thread packs all of B) unless B is the wider operand: then by columns (each thread reads all
    # of A). Rows also keep a thread on the rows the row-split kernels before and after it touch: MiniLM's encode
    # ran 3-4% faster than with its 384-wide products split by columns, which are 0-3% faster alone.
    by_rows = slivers < 2 * parts or n <= m
    units = -(-m // 12) if by_rows else slivers
    parts = min(parts, units)
    if parts < 2:
        compiled.sgemm(*kernels.functions, a, b, out, bias, use_bias)
        return
    unit, limit = (12, m) if by_rows else (32, n)
    starts = np.array([min(start * unit, limit) for start, _ in _split_ranges(units, parts)] + [limit], np.int64)
    compiled.sgemm_parallel(*kernels.functions, a, b, out, bias, use_bias, starts, by_rows)
