"""Losses: cross_entropy, nll_loss, mse_loss, l1_loss, smooth_l1_loss, huber_loss, binary_cross_entropy,
binary_cross_entropy_with_logits, kl_div, poisson_nll_loss, gaussian_nll_loss — PyTorch's signatures,
reductions and weighting rules. The margin and embedding losses are in ``loss_margin.py``, CTC in ``loss_ctc.py``.

``reduction`` is 'none' (per-element or per-sample losses), 'mean' or 'sum'. The deprecated
``size_average``/``reduce`` flags are honoured the way PyTorch honours them.
"""

from __future__ import annotations

import builtins
import math
import warnings
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError
from hubkit.ops.activation import _sigmoid_array, log_softmax
from hubkit.ops.elementwise import abs, as_operands, log, sub
from hubkit.ops.reduction import mean, sum
from hubkit.ops.shape import masked_fill, reshape
from hubkit.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(size_average: bool | None, reduce: bool | None, reduction: str, op: str) -> str:
    if size_average is not None or reduce is not None:  # the deprecated pair overrides ``reduction``
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        legacy = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn(
            f"{op}: size_average and reduce args will be deprecated, please use reduction='{legacy}' instead.",
            UserWarning,
            stacklevel=3,
        )
        return legacy
    if reduction not in _REDUCTIONS:
        raise ArgumentError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return sum(loss)
    return mean(loss) if reduction == "mean" else loss


def _warn_if_broadcast(op: str, input: Tensor, target: Tensor) -> None:  # noqa: A002
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"{op}: using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}); this will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )


def _weighted(op: str, loss: Tensor, weight: Tensor | None, input: Tensor, reduction: str) -> Tensor:  # noqa: A002
    """PyTorch's per-element weights for mse/l1: the mean divides by the sum of the weights."""
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ShapeError(f"{op}: weight {tuple(weight.shape)} and input {tuple(input.shape)} must have the same size")
    loss = loss * weight
    if reduction == "mean":
        return sum(loss) / sum(weight)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- regression losses


def mse_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,  # noqa: A002
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Squared error ``(input - target)^2``; ``input``, ``target`` (and ``weight``): ``(*)`` -> scalar,
    or ``(*)`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "mse_loss")
    _warn_if_broadcast("mse_loss", input, target)
    d = sub(input, target)
    return _weighted("mse_loss", d * d, weight, input, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,  # noqa: A002
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Absolute error ``|input - target|``; shapes as ``mse_loss``."""
    reduction = _reduction(size_average, reduce, reduction, "l1_loss")
    _warn_if_broadcast("l1_loss", input, target)
    return _weighted("l1_loss", abs(sub(input, target)), weight, input, reduction)


class SmoothL1(Function):
    """Elementwise ``scale * (0.5 d^2 / beta)`` where ``|d| < beta``, else ``scale * (|d| - 0.5 beta)``,
    with ``d = x - t``. ``scale=1`` is smooth L1; ``scale=beta=delta`` is Huber.
    """

    def __init__(self, beta: float, scale: float = 1.0) -> None:
        self.beta, self.scale = beta, scale

    def forward(self, x: Any, t: Any) -> Any:
        xp = get_array_module(x)
        d = x - t
        ad = xp.abs(d)
        self.d, self.inside = d, ad < self.beta
        beta = d.dtype.type(self.beta)
        y = xp.where(self.inside, d.dtype.type(0.5) * d * d / beta, ad - d.dtype.type(0.5) * beta)
        return y if self.scale == 1.0 else y * d.dtype.type(self.scale)

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        d = self.d
        gx = gy * xp.where(self.inside, d / d.dtype.type(self.beta), xp.sign(d))
        if self.scale != 1.0:
            gx = gx * gx.dtype.type(self.scale)
        return gx, (-gx if self.needs_input_grad[1] else None)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None,  # noqa: A002
                   reduce: bool | None = None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Quadratic below ``beta``, linear above (``beta=0`` is ``l1_loss``); shapes as ``mse_loss``."""
    reduction = _reduction(size_average, reduce, reduction, "smooth_l1_loss")
    if beta < 0:
        raise ArgumentError(f"smooth_l1_loss: beta must not be negative, got {beta}")
    _warn_if_broadcast("smooth_l1_loss", input, target)
    if beta == 0:
        return _reduce(abs(sub(input, target)), reduction)
    x, t = as_operands(input, target, "smooth_l1_loss")
    return _reduce(SmoothL1(beta)(x, t), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,  # noqa: A002
               weight: Tensor | None = None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``: ``delta * smooth_l1_loss(beta=delta)``.

    ``input``, ``target`` (and ``weight``): ``(*)`` -> scalar, or ``(*)`` with ``reduction='none'``. Unlike
    ``mse_loss``, a weighted mean divides by the element count, not by the summed weights (as PyTorch does).
    """
    reduction = _reduction(None, None, reduction, "huber_loss")
    if not delta > 0:
        raise ArgumentError(f"huber_loss: delta must be positive, got {delta}")
    _warn_if_broadcast("huber_loss", input, target)
    x, t = as_operands(input, target, "huber_loss")
    loss = SmoothL1(delta, delta)(x, t)
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise ShapeError(f"huber_loss: weight {tuple(weight.shape)} and input {tuple(input.shape)} "
                             "must have the same size")
        loss = loss * weight
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- binary losses


def _same_shape(op: str, input: Tensor, target: Tensor) -> None:  # noqa: A002
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(
            f"{op}: target {tuple(target.shape)} must have the same size as input {tuple(input.shape)}"
        )


_LOG_FLOOR = -100.0  # PyTorch clamps the logs of binary_cross_entropy here, so p = 0 or 1 gives a finite loss


class BinaryCrossEntropy(Function):
    """Elementwise ``-w (t log p + (1 - t) log(1 - p))`` with the logs clamped at -100."""

    def forward(self, p: Any, t: Any, w: Any) -> Any:
        xp = get_array_module(p)
        with np.errstate(divide="ignore"):
            log_p = xp.maximum(xp.log(p), p.dtype.type(_LOG_FLOOR))
            log_q = xp.maximum(xp.log1p(-p), p.dtype.type(_LOG_FLOOR))
        raw = -(t * log_p + (1 - t) * log_q)
        self.p, self.t, self.w = p, t, w
        self.log_p, self.log_q, self.raw = log_p, log_q, raw
        return raw if w is None else raw * w

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        xp = get_array_module(gy)
        p, t = self.p, self.t
        g = gy if self.w is None else gy * self.w
        gp = gt = gw = None
        if self.needs_input_grad[0]:
            gp = g * (p - t) / xp.maximum((1 - p) * p, p.dtype.type(1e-12))
        if self.needs_input_grad[1]:
            gt = g * (self.log_q - self.log_p)
        if self.needs_input_grad[2]:
            gw = gy * self.raw
        return gp, gt, gw


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """Binary cross entropy of probabilities ``input`` in [0, 1] against ``target`` in [0, 1].

    ``input``, ``target: (*)``; ``weight`` broadcasts to ``(*)``. Logs are clamped at -100 as in PyTorch.
    """
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy")
    _same_shape("binary_cross_entropy", input, target)
    for name, x in (("input", input), ("target", target)):
        if x.array.size and not bool(((x.array >= 0) & (x.array <= 1)).all()):
            raise ArgumentError(
                f"binary_cross_entropy: all elements of {name} should be between 0 and 1; "
                + ("apply sigmoid first, or use binary_cross_entropy_with_logits" if name == "input" else "")
            )
    x, t = as_operands(input, target, "binary_cross_entropy")
    w = None if weight is None else weight.to(x.dtype)
    return _reduce(BinaryCrossEntropy()(x, t, w), reduction)


class BinaryCrossEntropyWithLogits(Function):
    """Elementwise ``w ((1 - t) x + (1 + (pw - 1) t) softplus(-x))``, the stable form of BCE(sigmoid(x), t)."""

    def forward(self, x: Any, t: Any, w: Any, pw: Any) -> Any:
        xp = get_array_module(x)
        sp = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus(-x) = log(1 + exp(-x))
        lw = 1 if pw is None else 1 + (pw - 1) * t
        raw = (1 - t) * x + lw * sp
        self.x, self.t, self.w, self.pw, self.sp, self.lw, self.raw = x, t, w, pw, sp, lw, raw
        return raw if w is None else raw * w

    def backward(self, gy: Any) -> tuple[Any, Any, Any, Any]:
        x, t, pw = self.x, self.t, self.pw
        g = gy if self.w is None else gy * self.w
        gx = gt = gw = gpw = None
        if self.needs_input_grad[0]:
            gx = g * ((1 - t) - self.lw * _sigmoid_array(-x))
        if self.needs_input_grad[1]:
            gt = g * (-x if pw is None else -x + (pw - 1) * self.sp)
        if self.needs_input_grad[2]:
            gw = gy * self.raw
        if self.needs_input_grad[3]:
            gpw = g * t * self.sp
        return gx, gt, gw, gpw


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from logits.

    ``input``, ``target: (*)``; ``weight`` broadcasts to ``(*)``; ``pos_weight`` (the weight of
    positive examples, e.g. ``(C,)`` for ``(N, C)`` input) broadcasts along the trailing dims.
    """
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy_with_logits")
    _same_shape("binary_cross_entropy_with_logits", input, target)
    x, t = as_operands(input, target, "binary_cross_entropy_with_logits")
    w = None if weight is None else weight.to(x.dtype)
    pw = None if pos_weight is None else pos_weight.to(x.dtype)
    return _reduce(BinaryCrossEntropyWithLogits()(x, t, w, pw), reduction)


# ---------------------------------------------------------------- classification losses


class NLLLoss(Function):
    """``-weight[t] * x[n, t, d...]`` per position (0 where ``t == ignore_index``), then reduced.

    The mean divides by the sum of the weights of the non-ignored targets, as in PyTorch.
    """

    def __init__(self, target: Any, weight: Any, ignore_index: int, reduction: str) -> None:
        self.target, self.weight, self.ignore_index, self.reduction = target, weight, ignore_index, reduction

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        valid = self.target != self.ignore_index
        safe = xp.expand_dims(xp.where(valid, self.target, 0), 1)
        w = valid.astype(x.dtype) if self.weight is None else self.weight[safe[:, 0]] * valid
        loss = -w * xp.take_along_axis(x, safe, axis=1)[:, 0]
        self.shape, self.safe, self.w = x.shape, safe, w
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        self.total = w.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return loss.sum() / self.total

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        g = -self.w * gy
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                g = g / self.total
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        xp.put_along_axis(gx, self.safe, xp.expand_dims(g, 1), axis=1)
        return gx


def _class_weight(op: str, weight: Tensor | None, n_classes: int) -> Any:
    if weight is None:
        return None
    if tuple(weight.shape) != (n_classes,):
        raise ShapeError(f"{op}: weight has shape {tuple(weight.shape)}, expected one weight per class ({n_classes},)")
    return weight.array


def _check_targets(op: str, input: Tensor, target: Any, ignore_index: int) -> None:  # noqa: A002
    """Input ``(N, C, d1, ...)`` with target ``(N, d1, ...)`` of class indices in [0, C) or ``ignore_index``."""
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{op}: target must hold integer class indices, got {target.dtype}")
    expected = input.shape[:1] + input.shape[2:]
    if input.ndim < 2 or tuple(target.shape) != tuple(expected):
        raise ShapeError(
            f"{op}: input {tuple(input.shape)} (N, C, d1, ...) needs a target of shape {tuple(expected)} "
            f"(N, d1, ...), got {tuple(target.shape)}"
        )
    c = input.shape[1]
    bad = (target != ignore_index) & ((target < 0) | (target >= c))
    if bool(bad.any()):
        raise IndexOutOfRangeError(
            f"{op}: target {int(target[bad].reshape(-1)[0])} is out of bounds for {c} classes "
            f"(valid: 0..{c - 1}, or ignore_index={ignore_index})"
        )


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
             size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
             reduction: str = "mean") -> Tensor:
    """Negative log likelihood of log-probabilities: ``input: (N, C)``, ``(C,)`` or ``(N, C, d1, ...)``;
    ``target: (N,)``, ``()`` or ``(N, d1, ...)`` class indices; ``weight: (C,)``.

    -> scalar, or the target's shape with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "nll_loss")
    return _nll("nll_loss", input, target, weight, ignore_index, reduction)


def _nll(op: str, input: Tensor, target: Any, weight: Tensor | None, ignore_index: int,  # noqa: A002
         reduction: str) -> Tensor:
    t = input._xp.asarray(target.array if isinstance(target, Tensor) else target)
    if input.ndim == 1:  # a single sample: (C,) with a 0-d target
        if t.ndim != 0:
            raise ShapeError(f"{op}: input {tuple(input.shape)} (C,) needs a 0-d target, got {tuple(t.shape)}")
        out = _nll(op, reshape(input, 1, -1), t.reshape(1), weight, ignore_index, reduction)
        return reshape(out, ()) if reduction == "none" else out
    _check_targets(op, input, t, ignore_index)
    w = _class_weight(op, weight, input.shape[1])
    if w is not None and w.dtype != input.dtype:
        w = w.astype(input.dtype)
    return NLLLoss(t, w, ignore_index, reduction)(input)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
                  size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy of unnormalized logits ``input: (N, C)``, ``(C,)`` or ``(N, C, d1, ...)``.

    ``target`` is either class indices (``(N,)``, ``()`` or ``(N, d1, ...)``, integer; ``ignore_index``
    positions count for nothing) or class probabilities of ``input``'s shape (float). ``weight: (C,)``
    rescales classes; ``label_smoothing`` mixes the target with the uniform distribution. With
    class indices and ``reduction='mean'`` the loss is divided by the summed weights of the counted
    targets, exactly as PyTorch does.
    """
    reduction = _reduction(size_average, reduce, reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(f"cross_entropy: label_smoothing must be between 0 and 1, got {label_smoothing}")
    if input.ndim == 0:
        raise ShapeError("cross_entropy: input must have a class dim, got a 0-d tensor")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    w = _class_weight("cross_entropy", weight, n_classes)
    t = target if isinstance(target, Tensor) and target.device == input.device else Tensor._make(
        input._xp.asarray(target.array if isinstance(target, Tensor) else target)
    )
    logp = log_softmax(input, class_dim)
    bshape = [n_classes if d == class_dim else 1 for d in range(input.ndim)]
    w_b = None if w is None else Tensor._make(w.astype(input.dtype, copy=False).reshape(bshape))

    if tuple(t.shape) == tuple(input.shape):  # class probabilities
        if t.dtype.kind != "f":
            raise DTypeError(
                f"cross_entropy: a target shaped like the input {tuple(input.shape)} holds class probabilities "
                f"and must be floating point, got {t.dtype}"
            )
        if ignore_index >= 0:
            raise ArgumentError("cross_entropy: ignore_index is not supported for class-probability targets")
        if label_smoothing > 0:
            t = t * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp * t if w_b is None else logp * t * w_b
        if reduction == "none":
            return -sum(prod, class_dim)
        if reduction == "sum":
            return -sum(prod)
        count = input.array.size // max(n_classes, 1)
        return -sum(prod) / count if count else -sum(prod) * float("nan")

    nll = _nll("cross_entropy", logp, t, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    ignore = t.array == ignore_index
    smooth = -sum(logp if w_b is None else logp * w_b, class_dim)
    smooth = masked_fill(smooth, ignore, 0.0)
    if reduction == "mean":
        if w is None:
            denom = float((~ignore).sum())
        else:
            denom = float(w[t.array[~ignore]].sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            smooth_term = sum(smooth) / denom if denom else sum(smooth) * float("nan")
    else:
        smooth_term = _reduce(smooth, reduction)
    return nll * (1 - label_smoothing) + smooth_term * (label_smoothing / n_classes)


# ---------------------------------------------------------------- probabilistic losses


class KLDiv(Function):
    """Elementwise ``t (log t - x)`` (0 where ``t = 0``), or ``exp(t) (t - x)`` when the target is a log.

    Fused so that ``0 log 0`` is 0 without a ``nan`` ever entering the graph.
    """

    def __init__(self, log_target: bool) -> None:
        self.log_target = log_target

    def forward(self, x: Any, t: Any) -> Any:
        xp = get_array_module(x)
        need_x, need_t = self.needs_input_grad
        if self.log_target:
            et = xp.exp(t)
            self.et = et if need_x or need_t else None
            self.diff = t - x if need_t else None
            return et * (t - x)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_t = xp.log(t)
            t_log_t = xp.where(t == 0, x.dtype.type(0), t * log_t)
        self.t = t if need_x else None
        self.log_t, self.x = (log_t, x) if need_t else (None, None)
        return t_log_t - t * x

    def backward(self, gy: Any) -> tuple[Any, Any]:
        need_x, need_t = self.needs_input_grad
        if self.log_target:
            gx = -gy * self.et if need_x else None
            gt = gy * self.et * (self.diff + 1) if need_t else None
            return gx, gt
        gx = -gy * self.t if need_x else None
        gt = gy * (self.log_t + 1 - self.x) if need_t else None
        return gx, gt


def kl_div(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,  # noqa: A002
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence ``target * (log(target) - input)`` of log-probabilities ``input``.

    ``input``, ``target``: ``(*)`` (``target`` holds probabilities, or log-probabilities with
    ``log_target=True``). ``reduction='batchmean'`` (the true KL divergence) divides the sum by
    ``input.shape[0]``; ``'mean'`` divides by the element count and warns, as PyTorch does.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction, "kl_div")
    elif reduction not in ("none", "batchmean", "sum", "mean"):
        raise ArgumentError(f"kl_div: reduction must be one of ('none', 'batchmean', 'sum', 'mean'), got {reduction!r}")
    elif reduction == "mean":
        warnings.warn(
            "kl_div: reduction='mean' divides the total loss by both the batch size and the support size. "
            "'batchmean' divides only by the batch size, and aligns with the KL div math definition. "
            "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
            UserWarning,
            stacklevel=2,
        )
    x, t = as_operands(input, target, "kl_div")
    loss = KLDiv(log_target)(x, t)
    if reduction == "batchmean":
        return sum(loss) / input.shape[0] if input.ndim else sum(loss)
    return _reduce(loss, reduction)


class PoissonNLL(Function):
    """Elementwise ``exp(x) - t x`` (``log_input``) or ``x - t log(x + eps)``, plus with ``full`` the
    Stirling term ``t log t - t + 0.5 log(2 pi t)`` where ``t > 1``.

    Fused so the Stirling term's logs never see the targets it masks out (``t <= 1``, often 0): built
    from primitives they would warn and turn the target's gradient into ``0 * inf = nan``.
    """

    def __init__(self, log_input: bool, full: bool, eps: float) -> None:
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, x: Any, t: Any) -> Any:
        xp = get_array_module(x)
        one = x.dtype.type(1)
        self.x, self.t = x, t
        if self.log_input:
            self.ex = xp.exp(x)
            loss = self.ex - t * x
        else:
            self.xe = x + x.dtype.type(self.eps)
            with np.errstate(divide="ignore", invalid="ignore"):
                self.log_xe = xp.log(self.xe)
            loss = x - t * self.log_xe
        if self.full:
            self.big = t > 1
            self.tt = xp.where(self.big, t, one)
            log_tt = xp.log(self.tt)
            self.log_tt = log_tt
            stirling = self.tt * log_tt - self.tt + x.dtype.type(0.5) * xp.log(x.dtype.type(2 * math.pi) * self.tt)
            loss = loss + xp.where(self.big, stirling, x.dtype.type(0))
        return loss

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        x, t = self.x, self.t
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = gy * (self.ex - t) if self.log_input else gy * (1 - t / self.xe)
        if self.needs_input_grad[1]:
            gt = -gy * (x if self.log_input else self.log_xe)
            if self.full:
                gt = gt + gy * xp.where(self.big, self.log_tt + x.dtype.type(0.5) / self.tt, x.dtype.type(0))
        return gx, gt


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,  # noqa: A002
                     size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None,
                     reduction: str = "mean") -> Tensor:
    """Negative log likelihood of ``target ~ Poisson(rate)``: ``input`` is ``log(rate)`` with ``log_input``,
    else the rate itself. ``input``, ``target``: ``(*)`` -> scalar, or ``(*)`` with ``reduction='none'``.
    """
    reduction = _reduction(size_average, reduce, reduction, "poisson_nll_loss")
    x, t = as_operands(input, target, "poisson_nll_loss")
    return _reduce(PoissonNLL(log_input, full, eps)(x, t), reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False,  # noqa: A002
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """Negative log likelihood ``0.5 (log(var) + (input - target)^2 / var)`` of a Gaussian.

    ``input``, ``target``: ``(N, *)``; ``var`` is ``input``'s shape (heteroscedastic), that shape
    without its last dim or with one dim of size 1 (homoscedastic), or a Python number. ``var`` is
    clamped at ``eps`` for the value, while its gradient passes as if unclamped (as in PyTorch).
    ``full`` adds the constant ``0.5 log(2 pi)``.
    """
    xp = input._xp
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ArgumentError(f"gaussian_nll_loss: var has negative entry/entries: got {var}; variances must be >= 0")
        var = Tensor._make(xp.full(input.shape, var, dtype=input.dtype if input.dtype.kind == "f" else "float32"))
    elif not isinstance(var, Tensor):
        raise DTypeError(f"gaussian_nll_loss: var must be a Tensor or a Python number, got {type(var).__name__}")
    elif bool((var.array < 0).any()):
        raise ArgumentError("gaussian_nll_loss: var has negative entry/entries; variances must be >= 0")
    elif var.dtype.kind != "f":
        var = var.to(input.dtype if input.dtype.kind == "f" else "float32")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = reshape(var, *var.shape, 1)
        elif not (var.ndim == input.ndim and builtins.sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ShapeError(
                f"gaussian_nll_loss: var {tuple(var.shape)} is of incorrect size for input {tuple(input.shape)}: "
                "expected the input's shape, the input's shape without its last dim, or the input's shape with "
                "one dim of size 1"
            )
    reduction = _reduction(None, None, reduction, "gaussian_nll_loss")
    # a constant shift, so the value is clamped while the gradient reaches var untouched (PyTorch clamps
    # a clone under no_grad)
    shift = xp.maximum(var.array, var.dtype.type(eps)) - var.array
    var = var + Tensor._make(shift)
    d = sub(input, target)
    loss = (log(var) + d * d / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)
