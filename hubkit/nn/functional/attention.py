"""scaled_dot_product_attention, PyTorch's math semantics, as one fused Function.

Fusing keeps one saved attention matrix per call instead of the half-dozen a chain of primitives would
record (scores, masked scores, exponentials, ...), and the softmax backward is written in closed form.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit._backend import device_of, get_array_module, to_device
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.kernels import matmul
from hubkit.random import get_rng
from hubkit.tensor import Tensor


class ScaledDotProductAttention(Function):
    """``q`` (..., L, E), ``k`` (..., S, E), ``v`` (..., S, Ev), optional float ``mask`` broadcastable to
    (..., L, S) -> (..., L, Ev). ``keep`` is the boolean mask of positions allowed to attend (bool masks
    and causality), ``dropout_keep`` the dropout draw (or None)."""

    def __init__(self, scale: float, keep: Any, dropout_p: float, dropout_keep: Any) -> None:
        self.scale, self.keep = scale, keep
        self.dropout_p, self.dropout_keep = dropout_p, dropout_keep

    def forward(self, q: Any, k: Any, v: Any, mask: Any) -> Any:
        xp = get_array_module(q)
        scale = q.dtype.type(self.scale)
        # the softmax runs in place on the freshly made scores wherever the shapes allow: each pass over the
        # (..., L, S) scores is memory-bound, and a new array per pass was a fifth of MiniLM's encode time
        scores = matmul(q, xp.swapaxes(k, -1, -2))
        scores *= scale
        if mask is not None:
            if np.broadcast_shapes(scores.shape, mask.shape) == scores.shape and mask.dtype == scores.dtype:
                scores += mask
            else:
                scores = scores + mask
        if self.keep is not None:
            if np.broadcast_shapes(scores.shape, self.keep.shape) == scores.shape:
                xp.copyto(scores, -xp.inf, where=~self.keep)
            else:
                scores = xp.where(self.keep, scores, -xp.inf)
        top = scores.max(axis=-1, keepdims=True)
        # a row with nothing to attend to gives zeros (PyTorch's safe softmax), not NaN
        top[~xp.isfinite(top)] = 0
        scores -= top
        attn = xp.exp(scores, out=scores)
        total = attn.sum(axis=-1, keepdims=True)
        total[total <= 0] = 1
        attn /= total
        dropped = attn
        if self.dropout_keep is not None:
            dropped = attn * (self.dropout_keep / q.dtype.type(1 - self.dropout_p))
        self.q, self.k, self.v = q, k, v
        self.attn, self.dropped = attn, dropped
        return matmul(dropped, v)

    def backward(self, gy: Any) -> tuple[Any, Any, Any, Any]:
        xp = get_array_module(gy)
        need_q, need_k, need_v, need_mask = self.needs_input_grad
        gv = matmul(xp.swapaxes(self.dropped, -1, -2), gy) if need_v else None
        gq = gk = gmask = None
        if need_q or need_k or need_mask:
            g_attn = matmul(gy, xp.swapaxes(self.v, -1, -2))
            if self.dropout_keep is not None:
                g_attn = g_attn * (self.dropout_keep / gy.dtype.type(1 - self.dropout_p))
            gs = self.attn * (g_attn - (g_attn * self.attn).sum(axis=-1, keepdims=True))
            gmask = gs if need_mask else None
            gs = gs * gy.dtype.type(self.scale)
            gq = matmul(gs, self.k) if need_q else None
            gk = matmul(xp.swapaxes(gs, -1, -2), self.q) if need_k else None
        return gq, gk, gv, gmask


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``, ``torch.nn.functional.scaled_dot_product_attention``.

    ``query`` (..., L, E), ``key`` (..., S, E), ``value`` (..., S, Ev) -> (..., L, Ev); leading dims
    broadcast. ``attn_mask`` broadcastable to (..., L, S): a bool mask keeps the True positions, a float
    mask is added to the scores. ``is_causal`` lets position i attend to positions <= i (the top-left
    aligned lower triangle); it cannot be combined with ``attn_mask``. ``scale`` defaults to
    ``1/sqrt(E)``. ``dropout_p`` drops attention weights with the global generator (pass 0.0 in eval).
    A query row with no position to attend to gives zeros.
    """
    op = "scaled_dot_product_attention"
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ShapeError(f"{op}: query, key and value need at least 2 dims (..., L, E), got {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")  # fmt: skip
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"{op}: query {tuple(query.shape)} and key {tuple(key.shape)} must share the embedding dim E, and key "
            f"and value {tuple(value.shape)} the source length S"
        )
    if query.dtype != key.dtype or key.dtype != value.dtype:
        raise DTypeError(f"{op}: query, key and value must share a dtype, got {query.dtype}, {key.dtype}, "
                         f"{value.dtype}")  # fmt: skip
    if not 0.0 <= dropout_p < 1.0:
        raise ArgumentError(f"{op}: dropout_p must be in [0, 1), got {dropout_p!r}")
    if is_causal and attn_mask is not None:
        raise ArgumentError(f"{op}: pass either attn_mask or is_causal=True, not both")
    xp = get_array_module(query.array)
    length, source = query.shape[-2], key.shape[-2]
    keep = None
    mask = None
    if is_causal:
        keep = xp.tril(xp.ones((length, source), dtype=bool))
    elif attn_mask is not None:
        if attn_mask.dtype == bool:
            keep = attn_mask.array
        elif attn_mask.dtype.kind == "f":
            mask = attn_mask
        else:
            raise DTypeError(f"{op}: attn_mask must be bool or floating point, got {attn_mask.dtype}")
        try:
            np.broadcast_shapes(tuple(attn_mask.shape), (length, source))
        except ValueError:
            raise ShapeError(f"{op}: attn_mask {tuple(attn_mask.shape)} does not broadcast to the scores "
                             f"(..., {length}, {source})") from None  # fmt: skip
    dropout_keep = None
    if dropout_p > 0.0:
        batch = np.broadcast_shapes(tuple(query.shape[:-2]), tuple(key.shape[:-2]))
        draw = get_rng().random((*batch, length, source)) >= dropout_p
        dropout_keep = to_device(draw.astype(query.dtype), device_of(query.array))
    scale_ = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return ScaledDotProductAttention(scale_, keep, float(dropout_p), dropout_keep)(query, key, value, mask)
