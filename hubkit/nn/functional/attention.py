"""scaled_dot_product_attention, PyTorch's math semantics, as one fused Function.

Fusing keeps one saved attention matrix per call instead of the half-dozen a chain of primitives would
record (scores, masked scores, exponentials, ...), and the softmax backward is written in closed form.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit import kernels
from hubkit._backend import device_of, get_array_module, to_device
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.random import get_rng
from hubkit.tensor import Tensor


class ScaledDotProductAttention(Function):
    """``q`` (..., L, E), ``k`` (..., S, E), ``v`` (..., S, Ev), optional float ``mask`` (q's dtype)
    broadcastable to (..., L, S) -> (..., L, Ev). ``keep`` is the boolean mask of positions allowed to attend
    (bool masks and causality), ``dropout_keep`` the dropout draw (or None). The arithmetic is the kernels'
    ``attention_forward``/``attention_backward`` (``hubkit/kernels/generic.py``)."""

    def __init__(self, scale: float, keep: Any, dropout_p: float, dropout_keep: Any) -> None:
        self.scale, self.keep = scale, keep
        self.dropout_p, self.dropout_keep = dropout_p, dropout_keep

    def forward(self, q: Any, k: Any, v: Any, mask: Any) -> Any:
        out, attn, dropped = kernels.attention_forward(q, k, v, self.scale, mask, self.keep, self.dropout_keep,
                                                       self.dropout_p)  # fmt: skip
        if any(self.needs_input_grad):
            self.q, self.k, self.v = q, k, v
            self.attn, self.dropped = attn, dropped
        return out

    def backward(self, gy: Any) -> tuple[Any, Any, Any, Any]:
        return kernels.attention_backward(gy, self.q, self.k, self.v, self.scale, self.attn, self.dropped,
                                          self.dropout_keep, self.dropout_p, self.needs_input_grad)  # fmt: skip


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
            # a float mask of another dtype is cast to the query's (torch refuses it; the scores keep q's dtype)
            mask = attn_mask if attn_mask.dtype == query.dtype else attn_mask.to(query.dtype)
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
