"""Distances: pairwise_distance (row by row) and pdist (every pair of rows); cosine_similarity lives with
normalize in ``normalization.py``."""

from __future__ import annotations

import math
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.tensor import Tensor


class PNorm(Function):
    """``||x||_p`` along ``axis``: ``p`` in [0, inf] or -inf (the smallest magnitude).

    Gradients follow torch: zero where the norm is zero; for ``p = +-inf`` the gradient goes to the
    elements that attain the norm, shared equally among ties (``split_ties``, torch.norm) or given in
    full to each (torch.pdist).
    """

    def __init__(self, p: float, axis: int, keepdim: bool, split_ties: bool) -> None:
        self.p, self.axis, self.keepdim, self.split_ties = p, axis, keepdim, split_ties

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        a, p, axis = xp.abs(x), self.p, self.axis
        if p == 2:
            n = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
        elif p == 1:
            n = a.sum(axis=axis, keepdims=True)
        elif p == math.inf:
            n = a.max(axis=axis, keepdims=True)
        elif p == -math.inf:
            n = a.min(axis=axis, keepdims=True)
        elif p == 0:
            n = (x != 0).sum(axis=axis, keepdims=True).astype(x.dtype)
        else:
            t = x.dtype.type
            n = (a ** t(p)).sum(axis=axis, keepdims=True) ** t(1 / p)
        self.x, self.n = x, n
        return n if self.keepdim else n.squeeze(axis)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        x, n, p = self.x, self.n, self.p
        g = gy if self.keepdim else xp.expand_dims(gy, self.axis)
        t = gy.dtype.type
        if p == 0:
            return xp.zeros_like(x)
        if p == 1:
            return xp.sign(x) * g
        nonzero = n > 0
        safe_n = xp.where(nonzero, n, t(1))
        if p == 2:
            return x * (g * nonzero / safe_n)
        a = xp.abs(x)
        if p in (math.inf, -math.inf):
            hit = (a == n) & nonzero
            share = hit / xp.maximum(hit.sum(axis=self.axis, keepdims=True), 1) if self.split_ties else hit
            return xp.sign(x) * share * g
        present = a > 0
        ratio = xp.where(present, a, t(1)) / safe_n  # never 0 ** negative for p < 1
        slope = xp.where(present, ratio ** t(p - 1), t(0))
        return xp.sign(x) * slope * (g * nonzero)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last dim, ``torch.nn.functional.pairwise_distance``: ``(*, D)`` and
    ``(*, D)`` (broadcast) -> ``(*)``, or ``(*, 1)`` with ``keepdim``."""
    if x1.ndim == 0 and x2.ndim == 0:
        raise ShapeError("pairwise_distance: expected inputs with at least 1 dim (rows of vectors), got scalars")
    diff = x1 - x2 + eps
    return PNorm(float(p), diff.ndim - 1, keepdim, True)(diff)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:  # noqa: A002
    """The ``p``-norm distance between every pair of rows, ``torch.nn.functional.pdist``:
    ``(N, M) -> (N * (N - 1) / 2,)``, ordered (0, 1), (0, 2), ..., (1, 2), ... (the upper triangle)."""
    if input.ndim != 2:
        raise ShapeError(f"pdist: only supports 2D tensors (N, M), got shape {tuple(input.shape)}")
    if not p >= 0:
        raise ArgumentError(f"pdist: only supports non-negative p values, got {p}")
    rows, cols = input._xp.triu_indices(input.shape[0], 1)
    diff = input[rows] - input[cols]
    return PNorm(float(p), 1, False, False)(diff)
