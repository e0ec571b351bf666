"""The CPU kernels' thread pool: ``hubkit.set_num_threads`` / ``hubkit.get_num_threads``.

Some CPU kernels split their batch into contiguous chunks and run the chunks on a small pool of threads
(numpy's ufuncs and copies and OpenBLAS release the GIL on large arrays). Each chunk writes a disjoint
slice of an output allocated before the split, and reductions across chunks happen after the split in a
fixed order, so results do not depend on the thread count or on timing.

The pool is created on first use, never at import time, and again in a child process after ``fork``
(a forked child has none of its parent's threads; DataLoader workers are forked). A kernel called from a
pool thread runs its chunks serially, so the pool never waits on itself.

The pool pays off only when numpy's BLAS does not run threads of its own: OpenBLAS's idle workers spin
for a while after each multi-threaded call and take the cores the pool needs (see ``get_num_threads``
for the default this leads to, and bench/RESULTS.md for the numbers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from hubkit.errors import ArgumentError

T = TypeVar("T")

# Default thread count cap: the kernels split batches of tens of images; past a handful of threads the
# chunks get too small to pay for the hand-off.
_DEFAULT_MAX_THREADS = 8
_ENV_VAR = "HUBKIT_NUM_THREADS"

_lock = threading.Lock()
_num_threads: int | None = None  # None until first asked: then HUBKIT_NUM_THREADS or the usable cores
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0
_in_pool = threading.local()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _blas_is_single_threaded() -> bool:
    """Whether numpy's BLAS was told (before it loaded) to use one thread."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            return value == "1"
    return False


def _threads_from_env() -> int:
    value = os.environ.get(_ENV_VAR, "").strip()
    if not value:
        if not _blas_is_single_threaded():
            return 1
        return max(1, min(_usable_cores(), _DEFAULT_MAX_THREADS))
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ArgumentError(
            f"{_ENV_VAR} must be a positive whole number of threads, found {value!r}; "
            f"set it to e.g. 1 or 2, or unset it to use the usable cores (at most {_DEFAULT_MAX_THREADS})"
        )
    return n


def get_num_threads() -> int:
    """The number of threads hubkit's CPU kernels use (this thread included); 1 means no pool.

    Defaults to ``HUBKIT_NUM_THREADS`` when set. Otherwise it is 1 unless numpy's BLAS was started with
    one thread (``OPENBLAS_NUM_THREADS=1``, or ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``), and then the
    cores this process may run on, at most 8: a multi-threaded OpenBLAS keeps its idle workers spinning
    for a while after each threaded call, and they take the cores the pool would use (measured in
    bench/RESULTS.md: the pool made LeNet-5's step slower with a 2-thread OpenBLAS, 1.27x faster with
    a 1-thread one).
    """
    global _num_threads
    if _num_threads is None:
        with _lock:
            if _num_threads is None:
                _num_threads = _threads_from_env()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (this thread included) in hubkit's CPU kernels; ``1`` turns the pool off.

    Like ``torch.set_num_threads``, it does not change the threads of numpy's BLAS library, which only
    reads ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` when numpy is imported.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ArgumentError(f"set_num_threads expects a positive int, found {n!r}; pass e.g. 1 or os.cpu_count()")
    with _lock:
        _num_threads = n  # the pool is resized when next used with more than one thread


def _mark_pool_thread() -> None:
    _in_pool.active = True


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
    chunks = min(get_num_threads(), n // max(min_items, 1))
    if chunks <= 1 or getattr(_in_pool, "active", False):
        return [(0, n)]
    base, extra = divmod(n, chunks)
    bounds, start = [], 0
    for i in range(chunks):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def parallel_for(n: int, body: Callable[[int, int], T], min_items: int = 1) -> list[T]:
    """Run ``body(start, stop)`` over the chunks of :func:`chunk_bounds` and return the results in chunk
    order. The first chunk runs on the calling thread, the others on the pool; every chunk has finished
    when this returns, also when one raised (the first error in chunk order is re-raised)."""
    bounds = chunk_bounds(n, min_items)
    if len(bounds) == 1:
        return [body(0, n)]
    pool = _executor(get_num_threads() - 1)
    futures: list[Future[T]] = [pool.submit(body, start, stop) for start, stop in bounds[1:]]
    results: list[T] = []
    error: BaseException | None = None
    try:
        results.append(body(*bounds[0]))
    except BaseException as exc:  # noqa: BLE001  (re-raised below, after the pool chunks finished)
        error = exc
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
    if error is not None:
        raise error
    return results
