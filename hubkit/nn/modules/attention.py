"""MultiheadAttention with PyTorch's parameter names (``in_proj_weight``, ``in_proj_bias``, ``out_proj``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn import functional as F
from hubkit.nn import init
from hubkit.nn.module import Module
from hubkit.nn.modules.linear import Linear
from hubkit.nn.parameter import Parameter
from hubkit.tensor import Tensor, empty


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under the class name torch uses for ``MultiheadAttention.out_proj`` (so reprs match)."""


def _additive_mask(mask: Any, xp: Any, dtype: Any, what: str) -> Tensor:
    """The mask to add to attention scores: bool True (masked out) -> -inf; a float Tensor as it is, so a
    learned mask (a relative-position bias, say) gets its gradient, as in torch."""
    if isinstance(mask, Tensor) and mask.dtype.kind == "f":
        return mask if mask.dtype == dtype else mask.to(dtype)
    data = xp.asarray(mask.array if isinstance(mask, Tensor) else mask)
    if data.dtype == bool:
        out = xp.zeros(data.shape, dtype=dtype)
        out[data] = -np.inf
        return Tensor._make(out)
    if data.dtype.kind != "f":
        raise ArgumentError(f"MultiheadAttention: {what} must be bool or floating point, got {data.dtype}")
    return Tensor._make(data.astype(dtype, copy=False))


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al., 2017) with torch's parameters and argument conventions.

    ``forward(query, key, value)`` takes ``(L, N, E)``, ``(S, N, kdim)``, ``(S, N, vdim)`` (or batch first
    ``(N, L, E)`` with ``batch_first=True``, or unbatched ``(L, E)``) and returns ``(attn_output, weights)``:
    ``attn_output`` shaped like ``query``, ``weights (N, L, S)`` averaged over heads (``(N, H, L, S)`` with
    ``average_attn_weights=False``), or ``None`` when ``need_weights=False``.
    ``attn_mask``: ``(L, S)`` or ``(N*H, L, S)``; ``key_padding_mask``: ``(N, S)``; bool True = masked out,
    float masks are added to the scores. A query whose keys are all masked out gets zeros with
    ``need_weights=False`` (the path ``Transformer`` layers take) and NaN with ``need_weights=True``, as in torch.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ArgumentError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be positive and divisible by num_heads ({num_heads})"
            )
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = add_zero_attn

        def param(*shape: int) -> Parameter:
            return Parameter(empty(shape, dtype=dtype, device=device))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * embed_dim, embed_dim)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = param(embed_dim, embed_dim)
            self.k_proj_weight = param(embed_dim, self.kdim)
            self.v_proj_weight = param(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = param(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = param(1, 1, embed_dim)
            self.bias_v = param(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one GEMM for all three
                return F.chunk(F.linear(query, w, b), 3, dim=-1)
            return F.linear(query, w[:e], bq), F.linear(key, w[e:2 * e], bk), F.linear(value, w[2 * e:], bv)
        return (F.linear(query, self.q_proj_weight, bq), F.linear(key, self.k_proj_weight, bk),
                F.linear(value, self.v_proj_weight, bv))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (F.unsqueeze(t, 1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask[None]
        elif self.batch_first:
            same_kv = key is value
            same_qk = query is key
            query = F.transpose(query, 0, 1)
            key = query if same_qk else F.transpose(key, 0, 1)
            value = key if same_kv else F.transpose(value, 0, 1)
        if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
            raise ShapeError(
                f"MultiheadAttention: query, key and value must be 3-d (or all 2-d), got {tuple(query.shape)}, "
                f"{tuple(key.shape)}, {tuple(value.shape)}"
            )
        tgt_len, bsz, embed_dim = query.shape
        if embed_dim != self.embed_dim:
            raise ShapeError(f"MultiheadAttention: query has embed dim {embed_dim}, expected {self.embed_dim}")
        if key.shape[:2] != value.shape[:2]:
            raise ShapeError(
                f"MultiheadAttention: key {tuple(key.shape)} and value {tuple(value.shape)} differ in (S, N)"
            )
        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        dtype = q.dtype
        xp = q._xp

        src_len = key.shape[0]
        mask = None
        if attn_mask is not None:
            mask = _additive_mask(attn_mask, xp, dtype, "attn_mask")
            expected = {2: (tgt_len, src_len), 3: (bsz * heads, tgt_len, src_len)}.get(mask.ndim)
            if tuple(mask.shape) != expected:
                raise ShapeError(
                    f"MultiheadAttention: attn_mask has shape {tuple(mask.shape)}, expected (L, S) = "
                    f"{(tgt_len, src_len)} or (N*num_heads, L, S) = {(bsz * heads, tgt_len, src_len)}"
                )
            if mask.ndim == 2:
                mask = F.unsqueeze(mask, 0)
        elif is_causal:
            mask = Tensor._make(xp.triu(xp.full((1, tgt_len, src_len), -np.inf, dtype=dtype), 1))
        pad = None
        if key_padding_mask is not None:
            pad = _additive_mask(key_padding_mask, xp, dtype, "key_padding_mask")
            if tuple(pad.shape) != (bsz, src_len):
                raise ShapeError(
                    f"MultiheadAttention: key_padding_mask has shape {tuple(pad.shape)}, expected (N, S) = "
                    f"{(bsz, src_len)}"
                )

        if self.bias_k is not None:
            k = F.cat([k, F.expand(self.bias_k, 1, bsz, embed_dim)])
            v = F.cat([v, F.expand(self.bias_v, 1, bsz, embed_dim)])
        q = F.transpose(F.reshape(q, tgt_len, bsz * heads, head_dim), 0, 1)  # (N*H, L, D)
        k = F.transpose(F.reshape(k, k.shape[0], bsz * heads, head_dim), 0, 1)  # (N*H, S, D)
        v = F.transpose(F.reshape(v, v.shape[0], bsz * heads, head_dim), 0, 1)
        if self.add_zero_attn:
            zeros = Tensor._make(xp.zeros((bsz * heads, 1, head_dim), dtype=dtype))
            k = F.cat([k, zeros], dim=1)
            v = F.cat([v, zeros], dim=1)
        extra = k.shape[1] - src_len  # keys appended by add_bias_kv / add_zero_attn, never masked
        if extra:
            mask = None if mask is None else F.pad(mask, (0, extra))
            pad = None if pad is None else F.pad(pad, (0, extra))
        src_len = k.shape[1]
        if pad is not None:
            pad = F.reshape(F.expand(F.reshape(pad, bsz, 1, 1, src_len), bsz, heads, 1, src_len), bsz * heads, 1,
                            src_len)  # fmt: skip
            mask = pad if mask is None else mask + pad

        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            scores = F.matmul(q * (1.0 / math.sqrt(head_dim)), F.transpose(k, 1, 2))  # (N*H, L, S)
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, dim=-1)
            out = F.matmul(F.dropout(weights, dropout_p, True) if dropout_p > 0.0 else weights, v)  # (N*H, L, D)
        else:
            # torch's need_weights=False path is SDPA, whose softmax gives a query with every key masked out
            # zeros instead of NaN; without that a fully padded sequence would poison the whole batch's
            # gradients (0 * NaN). The fused op also keeps one attention matrix for backward instead of three.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        out = F.reshape(F.transpose(out, 0, 1), tgt_len * bsz, embed_dim)
        out = F.reshape(self.out_proj(out), tgt_len, bsz, embed_dim)
        if unbatched:
            out = F.squeeze(out, 1)
        elif self.batch_first:
            out = F.transpose(out, 0, 1)
        if not need_weights:
            return out, None
        weights = F.reshape(weights, bsz, heads, tgt_len, src_len)
        if average_attn_weights:
            weights = F.mean(weights, dim=1)
        if unbatched:
            weights = F.squeeze(weights, 0)
        return out, weights
