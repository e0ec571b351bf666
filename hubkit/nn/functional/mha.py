"""``multi_head_attention_forward``: torch.nn.functional's functional form of ``nn.MultiheadAttention``, with the
weights passed in (code that keeps its own projection weights, such as CLIP's attention pooling, calls it)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.nn.functional.attention import scaled_dot_product_attention
from hubkit.nn.functional.dropout import dropout
from hubkit.ops.activation import softmax
from hubkit.ops.linalg import linear
from hubkit.ops.shape import cat, pad
from hubkit.tensor import Tensor


def _float_mask(mask: Any, dtype: np.dtype, name: str) -> Tensor | None:
    """torch's canonical mask: bool True (masked out) becomes -inf, a float mask is added as it is."""
    if mask is None:
        return None
    if mask.dtype == bool:
        out = mask._xp.zeros(mask.shape, dtype=dtype)
        out[mask.array] = -np.inf
        return Tensor._make(out)
    if mask.dtype.kind != "f":
        raise DTypeError(f"only bool and floating types of {name} are supported, got {mask.dtype}")
    return mask if mask.dtype == dtype else mask.to(dtype)


def _check_shapes(query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any, attn_mask: Any,
                  num_heads: int) -> bool:
    """torch's _mha_shape_check: True for batched ``(L, N, E)`` inputs, False for unbatched ``(L, E)``."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise ShapeError(f"For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                             f"{key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise ShapeError(f"For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but "
                             f"found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise ShapeError(f"For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                             f"{attn_mask.ndim}-D tensor instead")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise ShapeError(f"For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                             f"{key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise ShapeError(f"For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but "
                             f"found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise ShapeError(f"For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                                 f"found {attn_mask.ndim}-D tensor instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != expected:
                raise ShapeError(f"Expected `attn_mask` shape to be {expected} but got {tuple(attn_mask.shape)}")
        return False
    raise ShapeError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")


def _in_projection(query: Tensor, key: Tensor, value: Tensor, w: Tensor, b: Tensor | None,
                   separate: tuple | None) -> tuple[Tensor, Tensor, Tensor]:
    e = query.shape[-1]
    if separate is not None:
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        wq, wk, wv = separate
        return linear(query, wq, bq), linear(key, wk, bk), linear(value, wv, bv)
    if query is key and key is value:  # self-attention: one GEMM for all three
        q, k, v = linear(query, w, b).chunk(3, dim=-1)
        return q, k, v
    bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
    return linear(query, w[:e], bq), linear(key, w[e:2 * e], bk), linear(value, w[2 * e:], bv)


def multi_head_attention_forward(
    query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
    in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None, bias_v: Tensor | None,
    add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor, out_proj_bias: Tensor | None,
    training: bool = True, key_padding_mask: Tensor | None = None, need_weights: bool = True,
    attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False, q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None, v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
    static_v: Tensor | None = None, average_attn_weights: bool = True, is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention with explicit weights: ``query (L, N, E)``, ``key (S, N, E_k)``, ``value (S, N, E_v)``
    (or unbatched ``(L, E)``...) -> ``(attn_output (L, N, E), weights (N, L, S) or (N, H, L, S) or None)``.

    ``in_proj_weight (3E, E)`` (or ``q/k/v_proj_weight`` with ``use_separate_proj_weight``),
    ``out_proj_weight (E, E)``; ``attn_mask (L, S)`` or ``(N*H, L, S)`` and ``key_padding_mask (N, S)``: bool
    True masks out, float is added. ``static_k``/``static_v`` ``(N*H, S, E/H)`` replace the projected keys and
    values. ``is_causal`` is torch's hint that ``attn_mask`` is the causal mask (it must still be given).
    """
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    dtype = query.dtype
    key_padding_mask = _float_mask(key_padding_mask, dtype, "key_padding_mask")
    if is_causal and attn_mask is None:
        raise ArgumentError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                            "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint alone drives the attention, as in torch
    else:
        attn_mask = _float_mask(attn_mask, dtype, "attn_mask")
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise ShapeError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    if embed_dim % num_heads:
        raise ShapeError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    head_dim = embed_dim // num_heads
    if key.shape[:2] != value.shape[:2]:
        raise ShapeError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ArgumentError("use_separate_proj_weight is True but q_proj_weight, k_proj_weight or v_proj_weight "
                                "is None")
        q, k, v = _in_projection(query, key, value, None, in_proj_bias, (q_proj_weight, k_proj_weight, v_proj_weight))
    else:
        if in_proj_weight is None:
            raise ArgumentError("use_separate_proj_weight is False but in_proj_weight is None")
        q, k, v = _in_projection(query, key, value, in_proj_weight, in_proj_bias, None)
    if attn_mask is not None:
        expected = {2: (tgt_len, src_len), 3: (bsz * num_heads, tgt_len, src_len)}.get(attn_mask.ndim)
        if expected is None or tuple(attn_mask.shape) != expected:
            raise ShapeError(f"The shape of the attn_mask is {tuple(attn_mask.shape)}, but should be "
                             f"{expected or (tgt_len, src_len)}.")
        if attn_mask.ndim == 2:
            attn_mask = attn_mask.unsqueeze(0)
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise ArgumentError("bias cannot be added to static key/value")
        k = cat([k, bias_k.repeat(1, bsz, 1)])
        v = cat([v, bias_v.repeat(1, bsz, 1)])
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_k is None else static_k
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_v is None else static_v
    for name, t in (("static_k", static_k), ("static_v", static_v)):
        if t is not None and (t.shape[0] != bsz * num_heads or t.shape[2] != head_dim):
            raise ShapeError(f"expecting {name} of shape ({bsz * num_heads}, S, {head_dim}), got {tuple(t.shape)}")
    if add_zero_attn:
        zeros = Tensor._make(q._xp.zeros((bsz * num_heads, 1, head_dim), dtype=dtype))
        k = cat([k, zeros], dim=1)
        v = cat([v, zeros], dim=1)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise ShapeError(f"expecting key_padding_mask shape of {(bsz, src_len)}, but got "
                             f"{tuple(key_padding_mask.shape)}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0
    if need_weights:
        scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = softmax(scores, dim=-1)
        out = (dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights) @ v
        out = linear(out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim), out_proj_weight, out_proj_bias)
        out = out.reshape(tgt_len, bsz, out.shape[1])
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out, weights = out.squeeze(1), weights.squeeze(0)
        return out, weights
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal and attn_mask is None)
    out = linear(out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim), out_proj_weight, out_proj_bias)
    out = out.reshape(tgt_len, bsz, out.shape[1])
    return (out if batched else out.squeeze(1)), None
