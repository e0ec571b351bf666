"""BLAS's ``cblas_?gemm`` as C function pointers, for compiled kernels that split a product over numba's threads.

Handing a product's halves to hubkit's pool costs 0.2-0.4 ms on a small VM (waking a Python thread, the GIL,
the join), as much as MiniLM's 384 x 384 layer itself; numba's threads fork and join in microseconds. So
``_threads.matmul`` can run its split through a compiled driver (``_jit_kernels.gemm_split_parallel``) that calls
the same BLAS routine on each chunk that the pool would have called through numpy or ``kernels._mkl``: MKL's
``cblas_?gemm`` (LP64, sequential layer) when MKL takes the product, else the OpenBLAS that numpy loaded
(numpy's wheels bundle scipy-openblas: ILP64, symbols ``scipy_cblas_?gemm64_``), whose threads hubkit has set to
one. The pointers are found once; ``None`` where a library or symbol is missing (the pool then runs the split).
"""

from __future__ import annotations

import ctypes
import functools
import os

from hubkit.kernels import _mkl

# the OpenBLAS symbol spellings, most specific first: (prefix, suffix, 64-bit integers)
_OPENBLAS_NAMES = (("scipy_", "64_", True), ("", "64_", True), ("scipy_", "", False), ("", "", False))


def _prototype(char: str, wide_ints: bool) -> type:
    """``cblas_?gemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``; the pointers as
    64-bit integers (compiled code passes addresses)."""
    e, p = ctypes.c_int, ctypes.c_int64
    i = ctypes.c_int64 if wide_ints else ctypes.c_int
    f = ctypes.c_float if char == "f" else ctypes.c_double
    return ctypes.CFUNCTYPE(None, e, e, e, i, i, i, f, p, i, p, i, f, p, i)


@functools.cache
def mkl_gemm(char: str):
    """MKL's ``cblas_sgemm`` (``char`` "f") or ``cblas_dgemm`` ("d"), or None without MKL."""
    lib = _mkl.library()
    if lib is None:
        return None
    name = "cblas_sgemm" if char == "f" else "cblas_dgemm"
    address = ctypes.cast(getattr(lib.dll, name), ctypes.c_void_p).value
    return _prototype(char, False)(address)


def _numpy_openblas_paths() -> list[str]:
    """The OpenBLAS libraries numpy loaded (the ones whose threads hubkit sets: ``_threads``)."""
    from hubkit.kernels._threads import _numpy_blas_controllers

    return [lib.filepath for lib in _numpy_blas_controllers() if lib.internal_api == "openblas"]


@functools.cache
def openblas_gemm(char: str):
    """numpy's OpenBLAS ``cblas_?gemm`` (ILP64 or LP64, as that build exports it), or None."""
    kind = "s" if char == "f" else "d"
    for path in _numpy_openblas_paths():
        try:
            dll = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        for prefix, suffix, wide in _OPENBLAS_NAMES:
            symbol = getattr(dll, f"{prefix}cblas_{kind}gemm{suffix}", None)
            if symbol is None:
                continue
            if not suffix and _is_ilp64(dll, prefix):
                wide = True
            address = ctypes.cast(symbol, ctypes.c_void_p).value
            return _prototype(char, wide)(address)
    return None


def _is_ilp64(dll: ctypes.CDLL, prefix: str) -> bool:
    """Whether an OpenBLAS without the ``64_`` suffix was built with 64-bit integers (its config string)."""
    config = getattr(dll, f"{prefix}openblas_get_config", None)
    if config is None:
        return False
    config.restype = ctypes.c_char_p
    return b"USE64BITINT" in (config() or b"")
