"""Float32 scaled dot-product attention on the CPU, one head at a time in compiled code
(``_jit_kernels.attention_heads_f32``): both products by BLAS function pointer (``kernels._blas``), the softmax
between them while the head's scores are in cache.

:func:`attention_forward` takes what it can and returns None for the rest, which then runs by blocks of numpy
passes (``generic.attention_forward``, the reference): other dtypes, dropout, more than two batch axes, no numba,
or no BLAS pointer. Every head is computed the same way whichever thread runs it, so results do not depend on the
thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit.kernels import _blas, _jit, _mkl, _threads
from hubkit.kernels.cpu_elementwise import score_masks

# Heads per pool chunk when numba's threads are not usable: the pool's hand-off costs about 0.1 ms.
_POOL_MIN_MACS = 1 << 21


def _gemm() -> Any:
    """The BLAS routine for the heads' products: MKL's where it is installed (called by pointer, it beats numpy's
    OpenBLAS at any size: MiniLM's 48 x 32 x 48 heads took 1.13 ms against 1.43 per layer, so the ``_mkl`` size
    rule for ctypes calls does not apply), else numpy's OpenBLAS; only where that runs one thread, else None."""
    if not _threads._blas_single:
        return None
    return _blas.mkl_gemm("f") if _mkl.usable("f") else _blas.openblas_gemm("f")


def _head_matrices(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` as a (B, H, rows, cols) view of ``shape`` whose per-head matrices BLAS takes as they are (unit-stride
    rows, a row pitch of at least ``cols``); copied into that layout only when it is not one already."""
    view = np.broadcast_to(x, shape)
    rows, cols = shape[2:]
    size = view.itemsize
    if (cols == 1 or view.strides[3] == size) and (rows == 1 or view.strides[2] >= cols * size) and \
            min(view.strides) >= 0:  # fmt: skip
        return view
    return np.broadcast_to(np.ascontiguousarray(x), shape)


def attention_forward(q: Any, k: Any, v: Any, scale: float, mask: Any, keep: Any) -> tuple[Any, Any, Any] | None:
    """``(out, attn, attn)`` as ``generic.attention_forward`` returns them without dropout, or None where this
    kernel does not apply (see the module docstring)."""
    if not (q.dtype == k.dtype == v.dtype == np.float32) or (mask is not None and mask.dtype != np.float32):
        return None
    operands = [x for x in (q, k, v, mask, keep) if x is not None]
    if any(x.ndim < 2 or x.ndim > 4 for x in operands):
        return None
    try:
        batch = np.broadcast_shapes(*(x.shape[:-2] for x in operands))
    except ValueError:
        return None  # the reference raises numpy's error
    length, depth = q.shape[-2:]
    width, out_width = k.shape[-2], v.shape[-1]
    if len(batch) > 2 or 0 in (length, depth, width, out_width) or 0 in batch:
        return None
    b4 = (1,) * (2 - len(batch)) + tuple(batch)
    jit = _jit.compiled(b4[0] * b4[1] * length * width, small_once_loaded=True)
    gemm = _gemm()
    if jit is None or gemm is None:
        return None
    q4 = _head_matrices(q, b4 + (length, depth))
    k4 = _head_matrices(k, b4 + (width, depth))
    v4 = _head_matrices(v, b4 + (width, out_width))
    scores_shape = b4 + (length, width)
    attn = np.empty(scores_shape, dtype=np.float32)
    out = np.empty(b4 + (length, out_width), dtype=np.float32)
    args = (gemm, gemm, q4, k4, v4, np.float32(scale), *score_masks(mask, keep, scores_shape), attn, out)
    heads = b4[0] * b4[1]
    macs = length * width * (depth + out_width)
    chunks = _jit.parallel_chunks(heads, 1, attn.nbytes + out.nbytes)
    if chunks:
        jit.attention_heads_f32_parallel(*args, chunks)
    else:
        _threads.parallel_for(heads, lambda i0, i1: jit.attention_heads_f32(*args, i0, i1),
                              -(-_POOL_MIN_MACS // max(macs, 1)))  # fmt: skip
    attn = attn.reshape(tuple(batch) + (length, width))
    return out.reshape(tuple(batch) + (length, out_width)), attn, attn
