"""Intel MKL's matrix products through ctypes, for hubkit's CPU products (the optional ``mkl`` extra).

numpy's OpenBLAS runs one thread's float32 products 10-20% slower than MKL on Intel CPUs at a transformer's
shapes, and up to 2x slower on the skinny products of small convolutions (bench/RESULTS.md); MKL is what
torch's CPU builds use. With the ``mkl`` wheel installed (``pip install 'hubkit[mkl]'``), the products that
``kernels._threads.matmul`` and the convolution kernels run (one per thread slice: hubkit's threads still own
the cores; only where numpy's BLAS runs one thread anyway) call MKL's sequential ``cblas_?gemm`` /
``cblas_?gemm_batch_strided`` instead of ``np.matmul``, through ctypes here or by function pointer from the
compiled split (``kernels._blas``). MKL runs sequential, so it never starts threads of its own. Attention's
small per-head products stay on numpy (``generic._mm``).

Only what a BLAS call takes as it is goes to MKL: float32/float64 operands of one dtype, 2-d or batched (batch
axes broadcast; those that merge into one stride make one call, else one call per outer index), with strides
BLAS can express (rows or columns of unit stride: transposed views need no copy), a C-ordered output that
overlaps neither input, and matrices big enough to pay for the call (``_MIN_MACS`` per matrix). Everything else
stays on numpy. ``HUBKIT_MKL=0`` keeps MKL
unloaded; ``HUBKIT_MKL_LIBRARY`` names the library file; ``hubkit.backends.mkl.enabled = False`` switches it
off at run time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_THREADING_SEQUENTIAL, _INTERFACE_LP64 = 1, 0
# Below this many multiply-adds per matrix the ctypes call (about 4 us) costs more than MKL gains over numpy.
_MIN_MACS = 1 << 16

_lock = threading.Lock()
_library: _Library | None = None
_searched = False
_unavailable: str | None = None


class _Library:
    """libmkl_rt with the GEMM entry points typed, set to its sequential layer."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dll = ctypes.CDLL(path)
        # the layers must be chosen before any other MKL call
        if self.dll.MKL_Set_Threading_Layer(_THREADING_SEQUENTIAL) != _THREADING_SEQUENTIAL:
            raise OSError("MKL refused its sequential threading layer")
        self.dll.MKL_Set_Interface_Layer(_INTERFACE_LP64)
        version = ctypes.create_string_buffer(256)
        self.dll.mkl_get_version_string(version, len(version))
        self.version = version.value.decode(errors="replace").strip()
        i, p = ctypes.c_int, ctypes.c_void_p
        self.gemm = {}
        self.gemm_batch = {}
        for char, name, scalar in (("f", "s", ctypes.c_float), ("d", "d", ctypes.c_double)):
            fn = getattr(self.dll, f"cblas_{name}gemm")
            fn.argtypes = (i, i, i, i, i, i, scalar, p, i, p, i, scalar, p, i)
            fn.restype = None
            self.gemm[char] = fn
            batch = getattr(self.dll, f"cblas_{name}gemm_batch_strided", None)
            if batch is not None:
                ll = ctypes.c_longlong
                batch.argtypes = (i, i, i, i, i, i, scalar, p, i, ll, p, i, ll, scalar, p, i, ll, i)
                batch.restype = None
                self.gemm_batch[char] = batch


def _candidates() -> list[str]:
    named = os.environ.get("HUBKIT_MKL_LIBRARY", "").strip()
    if named:
        return [named]
    paths = []
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):  # the mkl wheel installs into <prefix>/lib
        for version in ("3", "2"):
            path = os.path.join(prefix, "lib", f"libmkl_rt.so.{version}")
            if os.path.exists(path):
                paths.append(path)
    found = ctypes.util.find_library("mkl_rt")
    if found:
        paths.append(found)
    return paths


def library() -> _Library | None:
    """The loaded MKL, or None (then :func:`unavailable_reason` says why). Looked for once per process."""
    global _library, _searched, _unavailable
    if _searched:
        return _library
    with _lock:
        if _searched:
            return _library
        if os.environ.get("HUBKIT_MKL", "").strip() == "0":
            _unavailable = "HUBKIT_MKL=0 is set"
        else:
            errors = []
            for path in _candidates():
                try:
                    _library = _Library(path)
                    break
                except (OSError, AttributeError) as exc:
                    errors.append(f"{path}: {exc}")
            if _library is None:
                _unavailable = ("; ".join(errors) if errors else "no libmkl_rt found") + (
                    ": install it with `pip install 'hubkit[mkl]'` (Intel's mkl wheel), or name the library "
                    "file in HUBKIT_MKL_LIBRARY"
                )
        _searched = True
    return _library


def unavailable_reason() -> str | None:
    """Why MKL is not used (None when it is loaded)."""
    library()
    return _unavailable


def _reset_for_tests() -> None:
    global _library, _searched, _unavailable
    with _lock:
        _library, _searched, _unavailable = None, False, None


def _layout(a: np.ndarray, itemsize: int) -> tuple[int, int] | None:
    """``(transpose flag, leading dimension)`` that describe the 2-d ``a`` to a row-major BLAS without a copy,
    or None."""
    rows, cols = a.shape
    s0, s1 = a.strides
    if s0 < 0 or s1 < 0 or s0 % itemsize or s1 % itemsize:
        return None
    s0, s1 = s0 // itemsize, s1 // itemsize
    if s1 == 1 or cols == 1:  # rows of adjacent elements
        ld = s0 if rows > 1 else cols
        if ld >= cols:
            return _NO_TRANS, max(ld, 1)
    if s0 == 1 or rows == 1:  # columns of adjacent elements: a transposed view
        ld = s1 if cols > 1 else rows
        if ld >= rows:
            return _TRANS, max(ld, 1)
    return None


def _data(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _gemm(lib: _Library, char: str, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """One 2-d product ``out = a @ b`` on MKL; False (nothing written) when a layout is not BLAS's."""
    itemsize = a.itemsize
    la, lb, lc = _layout(a, itemsize), _layout(b, itemsize), _layout(out, itemsize)
    if la is None or lb is None or lc is None or lc[0] != _NO_TRANS:
        return False
    (m, k), n = a.shape, b.shape[1]
    lib.gemm[char](_ROW_MAJOR, la[0], lb[0], m, n, k, 1.0, _data(a), la[1], _data(b), lb[1], 0.0, _data(out), lc[1])
    return True


def _gemm_batch(lib: _Library, char: str, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """``out[i] = a[i] @ b[i]`` for 3-d operands in one MKL call; False when a layout is not BLAS's."""
    batch = lib.gemm_batch.get(char)
    itemsize = a.itemsize
    strides = [x.strides[0] for x in (a, b, out)]
    if batch is None or any(s < 0 or s % itemsize for s in strides):
        return False
    la, lb, lc = _layout(a[0], itemsize), _layout(b[0], itemsize), _layout(out[0], itemsize)
    if la is None or lb is None or lc is None or lc[0] != _NO_TRANS:
        return False
    count, m, k = a.shape
    n = b.shape[2]
    sa, sb, sc = (s // itemsize for s in strides)
    if sc < lc[1] * m:  # the output matrices must not overlap one another
        return False
    batch(_ROW_MAJOR, la[0], lb[0], m, n, k, 1.0, _data(a), la[1], sa, _data(b), lb[1], sb, 0.0, _data(out), lc[1],
          sc, count)  # fmt: skip
    return True


@functools.cache
def _flags():
    """``hubkit.backends.mkl``, whose ``enabled`` switches MKL off at run time (imported once: it imports this)."""
    from hubkit.backends import mkl

    return mkl


def _merged(a: np.ndarray) -> np.ndarray | None:
    """``a`` (..., M, K) as a 3-d view (batch, M, K), or None when its batch axes cannot merge without a copy."""
    axes = [(n, step) for n, step in zip(a.shape[:-2], a.strides[:-2]) if n != 1]
    for (_, outer), (n, inner) in zip(axes, axes[1:]):
        if outer != inner * n:
            return None
    count = 1
    for n, _ in axes:
        count *= n
    stride = axes[-1][1] if axes else 0
    return np.lib.stride_tricks.as_strided(a, (count,) + a.shape[-2:], (stride,) + a.strides[-2:])


def usable(char: str) -> bool:
    """Whether MKL is loaded, switched on, and has a product for ``char`` (numpy's type code)."""
    lib = _library if _searched else library()
    return lib is not None and char in "fd" and _flags().enabled


def would_take(char: str, macs: int) -> bool:
    """Whether :func:`matmul` would run a product of ``char``-typed matrices of ``macs`` multiply-adds each on
    MKL, given operands whose layouts BLAS takes."""
    return macs >= _MIN_MACS and usable(char)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray | None:
    """``a @ b`` into ``out`` (allocated when None) on MKL, or None when MKL does not take these operands (the
    caller then runs ``np.matmul``). Batch axes broadcast as numpy's do (a layer's weights against a batch of
    images).

    Whether MKL takes a product depends on each matrix's size, never on the batch's: a kernel that splits a
    batch over threads then computes every image's product on the same library whatever the thread count."""
    lib = _library if _searched else library()
    if lib is None or min(a.ndim, b.ndim) < 2 or not _flags().enabled:
        return None
    char = a.dtype.char
    if char not in "fd" or b.dtype.char != char or (out is not None and out.dtype.char != char):
        return None
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    if k != k2 or m * n * k < _MIN_MACS:
        return None
    if a.shape[:-2] != b.shape[:-2]:  # numpy's broadcasting of the batch axes, as views of stride 0 (no copies)
        try:
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            return None  # np.matmul raises the error
        a, b = np.broadcast_to(a, batch + (m, k)), np.broadcast_to(b, batch + (k, n))
    shape = a.shape[:-1] + (n,)
    if 0 in shape:
        return None
    if out is None:
        out = np.empty(shape, dtype=a.dtype)
    elif out.shape != shape or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return None
    if a.ndim == 2:
        done = _gemm(lib, char, a, b, out)
    else:
        a3, b3, o3 = _merged(a), _merged(b), _merged(out)
        if a3 is None or b3 is None or o3 is None:
            # batch axes that do not merge (heads split off the features by a transpose): one call per outer index
            # (after a refusal the caller recomputes all of it)
            done = all(matmul(a[i], b[i], out[i]) is not None for i in range(a.shape[0]))
        elif a3.shape[0] == 1:  # one product: the batch strides mean nothing
            done = _gemm(lib, char, a3[0], b3[0], o3[0])
        else:
            done = _gemm_batch(lib, char, a3, b3, o3)
    return out if done else None
