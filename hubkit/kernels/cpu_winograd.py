"""Winograd F(4x4, 3x3) and F(2x2, 3x3) for 3x3 stride-1 convolutions, forward and input gradient (numba;
``cpu_conv.py`` calls it: the input gradient is the forward of the output gradient with the flipped, transposed
kernel).

Each m x m block of outputs is ``A^T [(G g G^T) * (B^T d B)] A`` over its (m+2) x (m+2) input tile ``d`` (Lavin
and Gray, 2015): the 9 multiply-adds per output and input channel of the direct form become 36/16 = 2.25
(F(4x4, 3x3)) or 16/4 = 4 (F(2x2, 3x3)), as (m+2)^2 independent products ``U[k] (OC, C) @ V[k] (C, tiles)``,
one BLAS call each. The input and output transforms are a few additions and multiplications by small powers
of two (compiled: ``_jit_kernels.winograd4_input``/``winograd4_output`` and the F(2x2) pair). Tiles are taken a
few rows of tiles at a time, so that the transformed tiles and their products stay in cache, and the row
blocks are fixed by the layer's shape, not by the thread count: results do not depend on it.

F(4x4) runs on maps of 8x8 outputs and more (``tile_size``); at 7x7 its tiles cover 8x8 as F(2x2)'s do and its
larger weight transform made ResNet's 512-channel layers 40% slower. In float32, F(2x2)'s result is within a
few units in the last place of im2col + GEMM's; F(4x4)'s transforms (coefficients up to 8 and 1/24) cost about
twenty times that, ~1e-5 of the output's scale on a 256-channel layer (the tests hold it to 3e-5), the trade
oneDNN and cuDNN offer with the same transform. It runs where it pays (``applies``): the 3x3 layers of ResNets,
32-512 channels, in inference and training (the weight gradient stays on im2col + GEMM: ``cpu_conv.py``
rebuilds the columns for those layers either way). The GEMM path is the reference, and the path without numba.
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

# F(4x4, 3x3) instead of F(2x2, 3x3) where both output sides are at least this: 36 products per 16 outputs
# instead of 16 per 4 (2.25 multiplications per output instead of 4), for larger transforms and a float32
# error about 20x F(2x2)'s (~1e-5 of the output's scale; oneDNN and cuDNN offer the same F(4x4, 3x3)).
_TILE4_MIN_SIDE = 8

# G, the kernel transform ((m + 2) x 3 for tiles of m x m outputs; B^T and A^T are in the compiled loops), and
# kron(G, G): ((m+2)^2, 9), which maps a flattened 3x3 kernel g to the flattened G g G^T.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])  # fmt: skip
_GG = {2: np.kron(_G, _G), 4: np.kron(_G4, _G4)}


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


def tile_size(out_hw: Pair) -> int:
    """Outputs per tile side: 4 (F(4x4, 3x3)) when both output sides are at least ``_TILE4_MIN_SIDE``, else 2."""
    return 4 if min(out_hw) >= _TILE4_MIN_SIDE else 2


def transform_weights(w: np.ndarray, tile: int = 2) -> np.ndarray:
    """``w`` (OC, C, 3, 3) -> ``U`` ((tile+2)^2, OC, C): ``G w G^T`` per channel pair, flattened row-major. One
    ((tile+2)^2, 9) @ (9, OC*C) product writes it in this layout."""
    oc, c = w.shape[:2]
    gg = _GG[tile]
    u = np.matmul(gg.astype(w.dtype), w.reshape(oc * c, 9).T)
    return u.reshape(gg.shape[0], oc, c)


def conv2d(jit: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pads: Pads, out_hw: Pair,
           tile: int | None = None) -> np.ndarray:  # fmt: skip
    """``x`` (N, C, H, W) cross-correlated with ``w`` (OC, C, 3, 3) [+ ``b``] -> (N, OC, OH, OW) (see above), in
    tiles of ``tile`` x ``tile`` outputs (2 or 4; by default :func:`tile_size`)."""
    n, c = x.shape[:2]
    oc = w.shape[0]
    (oh, ow), (pt, pl) = out_hw, (pads[0][0], pads[1][0])
    tile = tile_size(out_hw) if tile is None else tile
    products = (tile + 2) ** 2
    transform_in, transform_out = ((jit.winograd_input, jit.winograd_output) if tile == 2 else
                                   (jit.winograd4_input, jit.winograd4_output))  # fmt: skip
    th, tw = -(-oh // tile), -(-ow // tile)
    u = transform_weights(w, tile)
    y = np.empty((n, oc, oh, ow), dtype=x.dtype)
    bias = np.empty(0, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    x = np.ascontiguousarray(x)
    rows = n * th  # rows of tiles, over the whole batch
    per_block = max(1, _BLOCK_BYTES // (products * (c + oc) * x.itemsize * tw), -(-_BLOCK_MIN_TILES // tw))
    blocks = min(-(-rows // per_block // 4) * 4, rows // -(-_BLOCK_FLOOR_TILES // tw)) if rows > per_block else 1
    per_block = -(-rows // max(blocks, 1))
    blocks = -(-rows // per_block)

    def run(b0: int, b1: int) -> None:
        for k in range(b0, b1):
            r0, r1 = k * per_block, min((k + 1) * per_block, rows)
            v = np.empty((products, c, (r1 - r0) * tw), dtype=x.dtype)
            transform_in(x, v, r0, r1, th, tw, pt, pl)
            transform_out(np.matmul(u, v), bias, y, r0, r1, th, tw)

    parallel_for(blocks, run)
    return y
