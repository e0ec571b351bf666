"""The optional compiled CPU kernels: numba (the ``hubkit[numba]`` extra), loaded on first use.

``compiled()`` returns the module of compiled kernels (``_jit_kernels.py``) when numba is installed and not
turned off, else None; the CPU kernels then run their numpy code, which stays the reference every compiled
kernel is tested against (tests/kernels/test_compiled.py). Nothing here imports numba at ``import hubkit``
time: numba's own import takes about half a second, paid by the first kernel that asks.

The compiled kernels release the GIL (``nogil``) and run single-threaded: hubkit's thread pool splits the
work over images or channels as it does for the numpy kernels, so results stay bit-identical for any
thread count. Most kernels also have a parallel driver (``*_parallel``: ``prange`` over the same contiguous
chunks: the direct convolution, 2x2 max pooling, clamp, BatchNorm's, LayerNorm's and GroupNorm's passes, the
depthwise convolution, GELU, the SGD and Adadelta updates) that runs on numba's own threads (GNU OpenMP, or TBB
when asked for), whose fork and join costs microseconds where the pool's hand-off costs 0.05-0.1 ms each way
(:func:`parallel_threads` says when they are used).
Compilation is cached on disk (numba's ``cache=True``: beside the module, or in numba's user cache directory
when the package directory is read-only), so only the first process pays for it.

Jobs under ``MIN_WORK`` elements stay on numpy. ``HUBKIT_NUMBA=0`` (or ``set_enabled(False)``) keeps every
kernel on numpy.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import sys
import threading
from types import ModuleType

import numpy as np

_ENV_VAR = "HUBKIT_NUMBA"
# Jobs smaller than this many elements stay on numpy: they gain nothing worth numba's import (half a second,
# and scipy with it) and first-call setup, so small scripts and tests never load numba.
MIN_WORK = 1 << 15
_lock = threading.Lock()
_enabled: bool | None = None  # None until first asked: then HUBKIT_NUMBA
_module: ModuleType | None = None
_load_failed = False

log = logging.getLogger("hubkit.kernels")


def available() -> bool:
    """Whether numba is installed (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def switched_off(name: str) -> bool:
    """Whether the environment variable ``name`` turns a kernel feature off (0, false, no, off); unset means on."""
    return os.environ.get(name, "1").strip().lower() in ("0", "false", "no", "off")


def enabled() -> bool:
    """Whether the compiled kernels are used when numba is installed (``HUBKIT_NUMBA``, ``set_enabled``)."""
    global _enabled
    if _enabled is None:
        _enabled = not switched_off(_ENV_VAR)
    return _enabled


def set_enabled(flag: bool) -> None:
    """Use the compiled kernels (``True``, the default when numba is installed) or the numpy ones."""
    global _enabled
    _enabled = bool(flag)


def compiled(work: int | None = None, small_once_loaded: bool = False) -> ModuleType | None:
    """The compiled kernel module, or None when numba is missing, turned off, or failed to load, or when the
    job is small: ``work`` (elements) below ``MIN_WORK``. With ``small_once_loaded``, a small job gets the module
    too when an earlier job loaded it (for kernels whose numpy version costs more than the call at any size:
    attention's softmax, whose blocks are small)."""
    global _module, _load_failed
    if not enabled() or _load_failed:
        return None
    if work is not None and work < MIN_WORK and not (small_once_loaded and _module is not None):
        return None
    if _module is None:
        with _lock:
            if _module is None and not _load_failed:
                if not available():
                    _load_failed = True
                    return None
                try:
                    _prefer_full_width_vectors()
                    from hubkit.kernels import _jit_kernels
                except Exception as exc:  # noqa: BLE001  (a broken numba install must not break the engine)
                    log.warning("hubkit: numba is installed but its kernels failed to load (%s); using numpy", exc)
                    _load_failed = True
                    return None
                _module = _jit_kernels
    return _module


# LLVM tunes its code for Intel's AVX-512 cores (Skylake-X to Sapphire Rapids, Rocket Lake) to prefer 256-bit
# vectors, and its vectoriser then leaves some loops scalar that it vectorises with 512-bit ones: the 2x2 max
# pooling's forward (stride-2 loads, a byte per output for the argmax) ran 6.5x faster with 512-bit vectors on
# a Sapphire Rapids VM (LeNet-5's two layers at batch 64: 0.55 -> 0.19 ms), while the other kernels moved within
# the run-to-run noise (bench/RESULTS.md, 2026-12-03 evening). So on a CPU with AVX-512 the kernels are compiled
# without that preference, unless the user chose numba's CPU name or features (NUMBA_CPU_NAME,
# NUMBA_CPU_FEATURES). numba's on-disk cache is keyed by the features, so the two builds never mix.
_FULL_WIDTH_FEATURES = ("avx512f", "avx512bw", "avx512vl")


def full_width_features(host: dict[str, bool]) -> str | None:
    """numba's CPU feature string for a host with features ``host`` (LLVM's names): the host's own, less the
    256-bit preference, when it has AVX-512 (F, BW, VL); else None (keep numba's default)."""
    if not all(host.get(name, False) for name in _FULL_WIDTH_FEATURES):
        return None
    flat = ",".join(("+" if on else "-") + name for name, on in sorted(host.items()))
    return flat + ",-prefer-256-bit"


def _prefer_full_width_vectors() -> None:
    """Apply :func:`full_width_features` to numba's configuration before anything is compiled or loaded from
    its cache (a no-op when the user set NUMBA_CPU_NAME or NUMBA_CPU_FEATURES, or AVX is turned off)."""
    from numba.core import config

    if config.CPU_NAME is not None or config.CPU_FEATURES is not None or not config.ENABLE_AVX:
        return
    import llvmlite.binding as llvm

    try:
        host = dict(llvm.get_host_cpu_features())
    except RuntimeError:  # LLVM cannot read this CPU's features: keep numba's default
        return
    features = full_width_features(host)
    if features is not None:
        config.CPU_FEATURES = features


def full_width_applied() -> bool:
    """Whether numba compiles hubkit's kernels for full-width (512-bit) vectors: see
    :func:`_prefer_full_width_vectors`, or the user's own NUMBA_CPU_FEATURES saying the same."""
    from numba.core import config

    return config.CPU_NAME is None and (config.CPU_FEATURES or "").endswith(",-prefer-256-bit")


# ---------------------------------------------------------------- numba's own threads
# Handing a short kernel to hubkit's pool costs about 0.1 ms on a small VM (waking a blocked Python thread,
# then the GIL), as much as a LeNet-5 layer's whole kernel; numba's parallel drivers (``prange``) fork and join
# on its threading layer in a few microseconds. They are used only on a thread-safe layer (tbb or omp: numba's
# fallback, workqueue, aborts when two threads call it at once), from a thread that is not one of hubkit's
# pool threads, and not in a child forked after the parent used them (GNU OpenMP terminates such a child).
_parallel_ok: bool | None = None  # None until probed
# Whether GNU OpenMP's workers spin long here (see _GOMP_SPINCOUNT): then streaming jobs and jobs of more than
# _LONG_SPIN_MAX_BYTES stay on hubkit's pool.
_spins_long = False
_parallel_used = False
_numba_threads = threading.local()


def parallel_threads(nbytes: int = 0, streaming: bool = False) -> int:
    """How many threads a compiled kernel's parallel driver (``*_parallel``) should run on: hubkit's thread
    count (``hubkit.set_num_threads``) when above one and numba's threads are usable here (see above) for a
    job of ``nbytes`` (its inputs and outputs; ``streaming``: one pass over memory, as elementwise kernels
    are), else 1: run the serial driver (on hubkit's pool where the caller splits the work)."""
    global _parallel_ok, _parallel_used
    from hubkit.kernels import _threads

    threads = _threads.get_num_threads()
    if threads <= 1 or _threads.in_pool_thread() or compiled() is None:
        return 1
    if _parallel_ok is None:
        with _lock:
            if _parallel_ok is None:
                _parallel_ok = _probe_parallel()
    if not _parallel_ok or (_spins_long and (streaming or nbytes > _LONG_SPIN_MAX_BYTES)):
        return 1
    import numba

    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    if getattr(_numba_threads, "count", None) != threads:
        numba.set_num_threads(threads)
        _numba_threads.count = threads
    _parallel_used = True
    return threads


def parallel_chunks(n: int, min_items: int, nbytes: int = 0, streaming: bool = False) -> int:
    """How many contiguous chunks a parallel driver should split ``n`` items (a job of ``nbytes``, ``streaming``
    or not: see :func:`parallel_threads`) into (at least ``min_items`` each, at most one per thread), or 0 when
    the serial path should run instead (one thread, or too little work: below a chunk per thread the fork and
    join costs more than it saves)."""
    chunks = min(parallel_threads(nbytes, streaming), n // max(min_items, 1))
    return chunks if chunks > 1 else 0


# GNU OpenMP's idle workers (numba's default threading layer here) spin for GOMP_SPINCOUNT iterations (300,000 by
# default) before they sleep. While they spin they hold the second core that the next kernel on hubkit's pool
# needs: MobileNet-V2's step, which mixes the two, ran 20% slower. 10,000 keeps most of the gain where numba's
# threads run back to back (LeNet-5 9.1 -> 10.3 ms against 11-12 ms on the pool alone) and none of the loss
# (bench/RESULTS.md). Set before the threading layer loads, unless the user chose a spin count or wait policy.
# It only takes effect when hubkit is first to load libgomp: in a process that imported torch first (torch
# ships libgomp, and numba's layer then shares it) the workers keep 300,000 and MobileNet-V2's step took
# 330-350 ms instead of 250-265 and ResNet-50's batch-16 forward 1,300-1,500 ms instead of 1,130-1,190 (its
# ReLUs run on numba's threads, its convolutions on the pool). When hubkit finds libgomp loaded that way, only
# convolution and pooling jobs of up to _LONG_SPIN_MAX_BYTES run on numba's threads: there the parallel regions
# come back to back (LeNet-5), and a larger job's hand-off to the pool costs little beside its own time.
# Streaming jobs (the elementwise passes: clamp, BatchNorm's affine map and input gradient, LayerNorm, GroupNorm,
# GELU, the optimizer updates) stay on the pool: they are short, and each one's spin then slowed the next
# kernel (MobileNet-V2's step, torch imported first: 310-366 ms with its ReLU6s on numba's threads, 255-315 on
# the pool, 294-320 in a process without torch). TBB (``NUMBA_THREADING_LAYER=tbb`` with
# ``pip install tbb``) does not spin, but LeNet-5's step, many short parallel regions, is 10-40% slower on it
# than on OpenMP, and ResNet-50's forward 10% slower than on the pool.
_GOMP_SPINCOUNT = "10000"
_LONG_SPIN_MAX_BYTES = 2 << 20


def _spin_chosen_by_user() -> bool:
    return "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ


def _gomp_spins_long() -> bool:
    """Whether GNU OpenMP is already loaded (torch loads it) with its default spin: no GOMP_SPINCOUNT or
    OMP_WAIT_POLICY in the environment, which it read when it loaded."""
    if _spin_chosen_by_user() or not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD)
    except OSError:
        return False
    return True


def _load_pip_tbb() -> bool:
    """When the user asked numba for TBB (``NUMBA_THREADING_LAYER=tbb`` or ``safe``), make the ``tbb`` wheel's
    library visible to numba, which looks for ``libtbb.so.12`` by name: pip puts it in ``<prefix>/lib``,
    outside the loader's path, and numba would find no layer at all. Loading it by its full path first lets
    the lookup by name find it. Says whether it was loaded."""
    import numba

    if numba.config.THREADING_LAYER not in ("tbb", "safe") or not sys.platform.startswith("linux"):
        return False
    try:
        from importlib import metadata

        files = metadata.files("tbb") or []
    except metadata.PackageNotFoundError:
        return False
    for f in files:
        if f.name == "libtbb.so.12":
            try:
                ctypes.CDLL(str(f.locate()), mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                log.info("hubkit: the tbb package's library does not load (%s)", exc)
                return False
            return True
    return False


def _probe_parallel() -> bool:
    """Start numba's threading layer (one tiny parallel call) and say whether it is thread-safe."""
    import numba

    global _spins_long
    spins_long = _gomp_spins_long()
    if not _load_pip_tbb() and not _spin_chosen_by_user():
        os.environ["GOMP_SPINCOUNT"] = _GOMP_SPINCOUNT
    try:
        _module.parallel_probe(np.zeros(2))
        layer = numba.threading_layer()
    except Exception as exc:  # noqa: BLE001  (no usable layer: the serial drivers still work)
        log.info("hubkit: numba's parallel threads are unavailable (%s); using hubkit's pool", exc)
        return False
    if layer not in ("omp", "tbb"):
        log.info("hubkit: numba's threading layer is %r (not thread-safe); using hubkit's pool", layer)
        return False
    if layer == "omp" and spins_long:
        log.info("hubkit: GNU OpenMP was loaded before hubkit with its default spin count; jobs over %d bytes "
                 "and elementwise jobs stay on hubkit's pool", _LONG_SPIN_MAX_BYTES)  # fmt: skip
        _spins_long = True
    return True


def _after_fork_in_child() -> None:
    global _parallel_ok, _numba_threads
    _numba_threads = threading.local()
    if _parallel_used:
        _parallel_ok = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
