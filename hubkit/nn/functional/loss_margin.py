"""Margin and embedding losses: margin_ranking_loss, hinge_embedding_loss, soft_margin_loss,
cosine_embedding_loss, multilabel_soft_margin_loss, multilabel_margin_loss, multi_margin_loss,
triplet_margin_loss, triplet_margin_with_distance_loss — PyTorch's signatures, reductions and checks.

All but one are short compositions of differentiable ops (autograd does their backward);
multilabel_margin_loss, whose gradient is a scatter over repeated class indices, is a fused Function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError
from hubkit.nn.functional.distance import pairwise_distance
from hubkit.nn.functional.loss import BinaryCrossEntropyWithLogits, _reduce, _reduction, _same_shape
from hubkit.ops.activation import softplus
from hubkit.ops.elementwise import as_operands, clamp, minimum, sqrt, sub, where
from hubkit.ops.reduction import sum
from hubkit.ops.shape import gather, reshape
from hubkit.tensor import Tensor


def _array(x: Any, like: Tensor) -> Any:
    """A target as a raw array on ``like``'s device (targets carry no gradient)."""
    return like._xp.asarray(x.array if isinstance(x, Tensor) else x)


def _class_indices(op: str, target: Any) -> None:
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{op}: target must hold integer class indices, got {target.dtype}")


# ---------------------------------------------------------------- pairwise margins


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``: ``target`` is 1 where ``input1`` should rank
    higher, -1 where ``input2`` should. All three ``(N,)`` (or ``()``, all with the same number of dims)
    -> scalar, or ``(N,)`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "margin_ranking_loss")
    if not input1.ndim == input2.ndim == target.ndim:
        raise ShapeError(
            f"margin_ranking_loss: all input tensors should have the same number of dims, got input1 "
            f"{tuple(input1.shape)}, input2 {tuple(input2.shape)}, target {tuple(target.shape)}"
        )
    return _reduce(clamp(-target * sub(input1, input2) + margin, min=0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,  # noqa: A002
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """``input`` where ``target == 1`` and ``max(0, margin - input)`` where ``target == -1`` (``input`` is
    usually a distance). ``input``, ``target``: ``(*)`` -> scalar, or ``(*)`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "hinge_embedding_loss")
    t = _array(target, input)
    # PyTorch's rule for targets that are neither 1 nor -1: both terms count
    loss = where(t != 1, clamp(sub(margin, input), min=0), 0.0) + where(t != -1, input, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average: bool | None = None,  # noqa: A002
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Two-class logistic loss ``log(1 + exp(-target * input))`` with ``target`` in {1, -1}.

    ``input``, ``target``: ``(*)`` -> scalar, or ``(*)`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "soft_margin_loss")
    x, t = as_operands(input, target, "soft_margin_loss")
    # threshold=inf: the exact log(1 + exp(.)) everywhere, as PyTorch computes this loss
    return _reduce(softplus(-(t * x), threshold=math.inf), reduction)


_COSINE_EPS = 1e-12  # added to both squared norms, as PyTorch does, so a zero vector gives cos = 0


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                          size_average: bool | None = None, reduce: bool | None = None,
                          reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where ``target == -1``.

    ``input1``, ``input2``: ``(N, D)`` or ``(D,)``; ``target``: ``(N,)`` or ``()`` -> scalar, or
    ``(N,)`` / ``()`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "cosine_embedding_loss")
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise ShapeError(
            f"cosine_embedding_loss: input1 and input2 must both be (N, D) or (D,) and of the same size, got "
            f"{tuple(input1.shape)} and {tuple(input2.shape)}"
        )
    t = _array(target, input1)
    if tuple(t.shape) != tuple(input1.shape[:-1]):
        raise ShapeError(
            f"cosine_embedding_loss: inputs {tuple(input1.shape)} need a target of shape "
            f"{tuple(input1.shape[:-1])}, got {tuple(t.shape)}"
        )
    dim = input1.ndim - 1
    prod = sum(input1 * input2, dim)
    norms = (sum(input1 * input1, dim) + _COSINE_EPS) * (sum(input2 * input2, dim) + _COSINE_EPS)
    cos = prod / sqrt(norms)
    loss = where(t == 1, sub(1.0, cos), 0.0) + where(t == -1, clamp(cos - margin, min=0), 0.0)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- multi-class and multi-label margins


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
                                size_average: bool | None = None, reduce: bool | None = None,
                                reduction: str = "mean") -> Tensor:
    """One-vs-all logistic loss, averaged over the classes: ``input``, ``target`` (in [0, 1]):
    ``(N, C)`` or ``(C,)``; ``weight`` broadcasts to ``(N, C)`` -> scalar, or ``(N,)`` with
    ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "multilabel_soft_margin_loss")
    if input.ndim == 0:
        raise ShapeError("multilabel_soft_margin_loss: input must have a class dim, got a 0-d tensor")
    _same_shape("multilabel_soft_margin_loss", input, target)
    x, t = as_operands(input, target, "multilabel_soft_margin_loss")
    w = None if weight is None else weight.to(x.dtype)
    # -(t logsigmoid(x) + (1 - t) logsigmoid(-x)) is binary cross entropy with logits, elementwise
    loss = BinaryCrossEntropyWithLogits()(x, t, w, None)
    return _reduce(sum(loss, -1) / input.shape[-1], reduction)


class MultilabelMargin(Function):
    """Per sample ``sum_j sum_{i not a target} max(0, 1 - x[y_j] + x[i]) / C`` over the targets ``y_j``.

    Fused because the gradient of ``x[y_j]`` adds up over repeated targets: one ``(N, J, C)`` pass
    instead of a Python loop over samples. ``target``, ``listed``: ``(N, J)``; ``is_target``: ``(N, C)``.
    """

    def __init__(self, target: Any, listed: Any, is_target: Any) -> None:
        self.target, self.listed, self.is_target = target, listed, is_target

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        xt = xp.take_along_axis(x, self.target, axis=1)
        z = 1 - xt[:, :, None] + x[:, None, :]
        self.active = (z > 0) & self.listed[:, :, None] & ~self.is_target[:, None, :]
        return (z * self.active).sum(axis=(1, 2)) / x.dtype.type(x.shape[1])

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        c = self.is_target.shape[1]
        active = self.active.astype(gy.dtype)
        g = (gy / gy.dtype.type(c))[:, None]
        gx = active.sum(axis=1) * g
        per_target = active.sum(axis=2) * g
        hits = (self.target[:, :, None] == xp.arange(c)) & self.listed[:, :, None]
        return gx - (per_target[:, :, None] * hits).sum(axis=1)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average: bool | None = None,  # noqa: A002
                           reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Multi-class multi-label hinge loss. ``input: (N, C)`` or ``(C,)``; ``target`` has the same shape
    and holds each sample's target class indices first, ended by -1 (or by the end of the row).

    -> scalar, or ``(N,)`` / ``()`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "multilabel_margin_loss")
    t = _array(target, input)
    _class_indices("multilabel_margin_loss", t)
    if input.ndim not in (1, 2) or tuple(t.shape) != tuple(input.shape):
        raise ShapeError(
            f"multilabel_margin_loss: input must be (N, C) or (C,) with a target of the same size, got input "
            f"{tuple(input.shape)} and target {tuple(t.shape)}"
        )
    x = reshape(input, 1, -1) if input.ndim == 1 else input
    t = t.reshape(x.shape)
    c = x.shape[1]
    listed = (t == -1).cumsum(axis=1) == 0  # everything before the first -1
    bad = listed & ((t < 0) | (t >= c))
    if bool(bad.any()):
        raise IndexOutOfRangeError(
            f"multilabel_margin_loss: target {int(t[bad][0])} is out of bounds for {c} classes "
            f"(valid: 0..{c - 1}, and -1 to end a sample's list)"
        )
    safe = input._xp.where(listed, t, 0)
    is_target = input._xp.zeros(x.shape, dtype=bool)
    rows, _ = input._xp.nonzero(listed)
    is_target[rows, safe[listed]] = True
    loss = MultilabelMargin(safe, listed, is_target)(x)
    if input.ndim == 1:
        loss = reshape(loss, ())
    return _reduce(loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,  # noqa: A002
                      weight: Tensor | None = None, size_average: bool | None = None,
                      reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss ``sum_{i != y} w[y] max(0, margin - x[y] + x[i])^p / C`` per sample.

    ``input: (N, C)`` or ``(C,)``; ``target: (N,)`` or ``()`` class indices; ``weight: (C,)``; ``p`` is 1
    or 2. -> scalar, or ``(N,)`` / ``()`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ArgumentError(f"multi_margin_loss: only p == 1 and p == 2 are supported, got p={p}")
    t = _array(target, input)
    _class_indices("multi_margin_loss", t)
    if input.ndim not in (1, 2) or tuple(t.shape) != tuple(input.shape[:-1]):
        raise ShapeError(
            f"multi_margin_loss: input (N, C) or (C,) needs a target of shape (N,) or (), got input "
            f"{tuple(input.shape)} and target {tuple(t.shape)}"
        )
    x = reshape(input, 1, -1) if input.ndim == 1 else input
    t = t.reshape(-1)
    n, c = x.shape
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != c):
        raise ShapeError(f"multi_margin_loss: weight must be one weight per class ({c},), got {tuple(weight.shape)}")
    if t.size and bool(((t < 0) | (t >= c)).any()):
        bad = t[(t < 0) | (t >= c)]
        raise IndexOutOfRangeError(
            f"multi_margin_loss: target {int(bad[0])} is out of bounds for {c} classes (valid: 0..{c - 1})"
        )
    xp = input._xp
    z = clamp(x - gather(x, 1, Tensor._make(t[:, None])) + margin, min=0)
    if p == 2:
        z = z * z
    # the target's own term (always the margin) is left out; the sample's class weight scales the rest
    keep = xp.ones(x.shape, dtype=x.dtype)
    keep[xp.arange(n), t] = 0
    if weight is not None:
        keep = keep * weight.array.astype(x.dtype, copy=False)[t][:, None]
    loss = sum(z * Tensor._make(keep), 1) / c
    if input.ndim == 1:
        loss = reshape(loss, ())
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- triplets


def _check_triplet(op: str, anchor: Tensor, positive: Tensor, negative: Tensor, margin: float) -> None:
    if not margin > 0:
        raise ArgumentError(f"{op}: margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ShapeError(
            f"{op}: the anchor, positive, and negative tensors are expected to have the same number of "
            f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative {negative.ndim}D"
        )


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False, size_average: bool | None = None,
                        reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d(x, y) = ||x - y + eps||_p`` over the last dim.

    ``anchor``, ``positive``, ``negative``: ``(N, D)`` or ``(D,)`` -> scalar, or ``(N,)`` / ``()`` with
    ``reduction='none'``. ``swap`` uses ``min(d(a, n), d(p, n))`` as the negative distance.
    """
    reduction = _reduction(size_average, reduce, reduction, "triplet_margin_loss")
    _check_triplet("triplet_margin_loss", anchor, positive, negative, margin)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(clamp(d_pos - d_neg + margin, min=0), reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function: Callable[[Tensor, Tensor], Tensor] | None = None,
                                      margin: float = 1.0, swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` for any ``distance_function(x, y) -> (N,)`` (default:
    the Euclidean pairwise distance). Shapes as ``triplet_margin_loss``.
    """
    reduction = _reduction(None, None, reduction, "triplet_margin_with_distance_loss")
    _check_triplet("triplet_margin_with_distance_loss", anchor, positive, negative, margin)
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = minimum(d_neg, dist(positive, negative))
    return _reduce(clamp(d_pos - d_neg + margin, min=0), reduction)
