"""Embedding lookup: rows of a weight matrix picked by integer indices."""

from __future__ import annotations

from typing import Any

from hubkit._backend import get_array_module, scatter_add
from hubkit.autograd import Function, no_grad
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError
from hubkit.tensor import Tensor


class Embedding(Function):
    """``y = weight[index]``; the weight's gradient sums the rows of ``gy`` that share an index."""

    def __init__(self, index: Any, padding_idx: int | None, scale_grad_by_freq: bool) -> None:
        self.index, self.padding_idx, self.scale_grad_by_freq = index, padding_idx, scale_grad_by_freq

    def forward(self, weight: Any) -> Any:
        self.weight_shape = weight.shape
        return get_array_module(weight).take(weight, self.index, axis=0)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        flat = self.index.reshape(-1)
        rows = gy.reshape(flat.size, self.weight_shape[1])
        if self.scale_grad_by_freq:
            counts = xp.bincount(flat, minlength=self.weight_shape[0])
            rows = rows / counts[flat][:, None].astype(gy.dtype)
        gw = xp.zeros(self.weight_shape, dtype=gy.dtype)
        scatter_add(gw, flat, rows)
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return gw


def _renorm_rows(weight: Tensor, index: Any, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the looked-up rows whose ``norm_type``-norm exceeds ``max_norm`` (as PyTorch does)."""
    xp = weight._xp
    rows = xp.unique(index.reshape(-1))
    w = weight.array[rows]
    norms = (xp.abs(w) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
    with no_grad():
        weight.array[rows] = w * scale[:, None]


def embedding(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Look up rows of ``weight``: ``input: (*)`` integer indices, ``weight: (num_embeddings, dim)``
    -> ``(*, dim)``.

    ``padding_idx``: that row gets no gradient. ``max_norm``: looked-up rows with a larger norm
    are rescaled in place first. ``scale_grad_by_freq``: divide each row's gradient by how often
    its index occurs in ``input``.
    """
    if sparse:
        raise ArgumentError("embedding: sparse gradients are not supported; pass sparse=False (gradients are dense)")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    index = weight._xp.asarray(input.array if isinstance(input, Tensor) else input)
    if index.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be an integer tensor, got {index.dtype}")
    num = weight.shape[0]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= num):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexOutOfRangeError(f"embedding: index {bad} is out of range for a weight with {num} rows")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ArgumentError(f"embedding: padding_idx {padding_idx} must be within [-{num}, {num})")
        padding_idx %= num
    if max_norm is not None:
        _renorm_rows(weight, index, max_norm, norm_type)
    return Embedding(index, padding_idx, scale_grad_by_freq)(weight)
