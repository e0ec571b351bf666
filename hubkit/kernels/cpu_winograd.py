"""Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions, forward and input gradient (numba; ``cpu_conv.py`` calls
it: the input gradient is the forward of the output gradient with the flipped, transposed kernel).

Each 2x2 block of outputs is ``A^T [(G g G^T) * (B^T d B)] A`` over its 4x4 input tile ``d`` (Lavin and
Gray, 2015): the 9 multiply-adds per output and input channel of the direct form become 4, as 16
independent products ``U[k] (OC, C) @ V[k] (C, tiles)``, one BLAS call each. The input and output
transforms are additions only (compiled: ``_jit_kernels.winograd_input``/``winograd_output``). Tiles are
taken a few rows of tiles at a time, so that the transformed tiles and their products stay in cache, and the
row blocks are fixed by the layer's shape, not by the thread count: results do not depend on it.

In float32 the result is within a few units in the last place of im2col + GEMM's (the transforms add at most
four terms, with coefficients 1/2 and 1), far inside what the tests hold it to. It runs where it pays (``applies``):
the 3x3 layers of ResNets, 32-512 channels, in inference and training (the weight gradient stays on im2col +
GEMM: ``cpu_conv.py`` rebuilds the columns for those layers either way). The GEMM path is the
reference, and the path without numba.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit.kernels import _jit
from hubkit.kernels._cpu_util import Pads, Pair
from hubkit.kernels._threads import parallel_for

# Both channel counts at least this: with fewer, the transforms cost more than the products they save.
_MIN_CHANNELS = 32
# The transformed tiles and their products of one row block take about this many bytes (16 * (C + OC) per
# tile), small enough for the second-level cache, but a block has at least _BLOCK_MIN_TILES tiles: the BLAS
# calls run at full speed only on that many columns (512-channel layers). The block count is then rounded up
# to a multiple of four (blocks of at least _BLOCK_FLOOR_TILES) so that two or four threads share them
# evenly: three blocks on two threads ran a 512-channel 7x7 layer 40% slower.
_BLOCK_BYTES = 1 << 20
_BLOCK_MIN_TILES = 64
_BLOCK_FLOOR_TILES = 32
# Layers with fewer tiles (2x2 outputs over the batch) than this stay on im2col + GEMM: the weight transform
# and the short products cost more than they save (batch 1 at 14x14 and below).
_MIN_TILES = 128

# G, the 4x3 kernel transform (B^T and A^T are in the compiled loops), and kron(G, G): (16, 9), which maps a
# flattened 3x3 kernel g to the flattened 4x4 G g G^T.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.kron(_G, _G)


def applies(x: np.ndarray, w: np.ndarray, stride: Pair, pads: Pads, dilation: Pair, groups: int) -> Any:
    """The compiled kernel module when the Winograd forward should run, else None: a 3x3 stride-1 undilated
    ungrouped convolution of float32 or float64 operands of one dtype, at least ``_MIN_CHANNELS`` channels in
    and out, padding of at most 2 on each side, at least ``_MIN_TILES`` tiles, numba available."""
    if groups != 1 or stride != (1, 1) or dilation != (1, 1) or w.shape[2:] != (3, 3):
        return None
    if x.dtype != w.dtype or x.dtype not in (np.float32, np.float64):
        return None
    if w.shape[0] < _MIN_CHANNELS or w.shape[1] < _MIN_CHANNELS or max(max(pads[0]), max(pads[1])) > 2:
        return None
    oh, ow = x.shape[2] + sum(pads[0]) - 2, x.shape[3] + sum(pads[1]) - 2
    if x.shape[0] * -(-oh // 2) * -(-ow // 2) < _MIN_TILES:
        return None
    return _jit.compiled(x.size)


def transform_weights(w: np.ndarray) -> np.ndarray:
    """``w`` (OC, C, 3, 3) -> ``U`` (16, OC, C): ``G w G^T`` per channel pair, flattened row-major (4x4). One
    (16, 9) @ (9, OC*C) product writes it in this layout."""
    oc, c = w.shape[:2]
    u = np.matmul(_GG.astype(w.dtype), w.reshape(oc * c, 9).T)
    return u.reshape(16, oc, c)


def conv2d(jit: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pads: Pads, out_hw: Pair) -> np.ndarray:
    """``x`` (N, C, H, W) cross-correlated with ``w`` (OC, C, 3, 3) [+ ``b``] -> (N, OC, OH, OW) (see above)."""
    n, c = x.shape[:2]
    oc = w.shape[0]
    (oh, ow), (pt, pl) = out_hw, (pads[0][0], pads[1][0])
    th, tw = -(-oh // 2), -(-ow // 2)
    u = transform_weights(w)
    y = np.empty((n, oc, oh, ow), dtype=x.dtype)
    bias = np.empty(0, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    x = np.ascontiguousarray(x)
    rows = n * th  # rows of tiles, over the whole batch
    per_block = max(1, _BLOCK_BYTES // (16 * (c + oc) * x.itemsize * tw), -(-_BLOCK_MIN_TILES // tw))
    blocks = min(-(-rows // per_block // 4) * 4, rows // -(-_BLOCK_FLOOR_TILES // tw)) if rows > per_block else 1
    per_block = -(-rows // max(blocks, 1))
    blocks = -(-rows // per_block)

    def run(b0: int, b1: int) -> None:
        for k in range(b0, b1):
            r0, r1 = k * per_block, min((k + 1) * per_block, rows)
            v = np.empty((16, c, (r1 - r0) * tw), dtype=x.dtype)
            jit.winograd_input(x, v, r0, r1, th, tw, pt, pl)
            jit.winograd_output(np.matmul(u, v), bias, y, r0, r1, th, tw)

    parallel_for(blocks, run)
    return y
