"""Connectionist temporal classification: ``ctc_loss`` with PyTorch's signature, shapes and gradient.

A sample's loss is ``-log p(target | log_probs)``, summed over every alignment of the target to the
frames (blanks between and around the labels, repeats collapsed). The forward pass runs the alpha
recursion in log space over the extended target ``(blank, y1, blank, y2, ..., blank)``; the backward
pass runs the beta recursion and turns ``alpha + beta`` into each frame's posterior over the classes.
Both are vectorised over the batch and the extended target, one Python step per frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit._backend import CPU, get_array_module, to_device
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError
from hubkit.nn.functional.loss import _reduction
from hubkit.ops.reduction import mean, sum
from hubkit.ops.shape import reshape
from hubkit.tensor import Tensor


class CTC(Function):
    """Per-sample CTC losses ``(N,)`` of ``log_probs: (T, N, C)``.

    ``ext: (N, L)`` holds the extended targets (blank-padded past each sample's ``2 * target_length + 1``),
    ``skip: (N, L)`` marks where the two-step transition ``s - 2 -> s`` is allowed (a label that differs
    from the label before it); ``input_lengths``, ``target_lengths``: ``(N,)`` on the device.

    The gradient is PyTorch's: ``(exp(log_probs) - posterior)`` on frames inside the input length, 0
    after it. That is the gradient with respect to the logits when ``log_probs = log_softmax(logits)``;
    it passes through log_softmax's backward unchanged (each frame's posterior sums to one), so training
    on log_softmax output gets the exact gradient, and a ``log_probs`` leaf gets what PyTorch gives it.
    """

    def __init__(self, ext: Any, skip: Any, input_lengths: Any, target_lengths: Any, zero_infinity: bool) -> None:
        self.ext, self.skip = ext, skip
        self.input_lengths, self.target_lengths = input_lengths, target_lengths
        self.zero_infinity = zero_infinity

    def forward(self, lp: Any) -> Any:
        xp = get_array_module(lp)
        t_max, n, _ = lp.shape
        length = self.ext.shape[1]
        neg_inf = lp.dtype.type(-np.inf)
        il, tl = self.input_lengths, self.target_lengths
        lp_ext = xp.take_along_axis(lp, xp.broadcast_to(self.ext[None], (t_max, n, length)), axis=2)
        alpha = xp.full((t_max, n, length), neg_inf, dtype=lp.dtype)
        if t_max:
            alpha[0, :, :2] = lp_ext[0, :, :2]
        skip = self.skip[:, 2:]
        for t in range(1, t_max):
            prev, step = alpha[t - 1], alpha[t]
            # alpha flows from s - 1 and (where allowed) s - 2 forward to s
            step[...] = prev
            xp.logaddexp(step[:, 1:], prev[:, :-1], out=step[:, 1:])
            xp.logaddexp(step[:, 2:], xp.where(skip, prev[:, :-2], neg_inf), out=step[:, 2:])
            step += lp_ext[t]
        # a path ends on the last label or on the blank after it, at each sample's last frame
        rows = xp.arange(n)
        last = xp.maximum(il - 1, 0)
        end = 2 * tl
        if t_max:
            at_end = alpha[last, rows, end]
            before_end = xp.where(tl > 0, alpha[last, rows, xp.maximum(end - 1, 0)], neg_inf)
            log_lik = xp.logaddexp(at_end, before_end)
        else:
            log_lik = xp.zeros(n, dtype=lp.dtype)
        # no frames: only the empty target is possible (probability 1)
        log_lik = xp.where(il == 0, xp.where(tl == 0, lp.dtype.type(0), neg_inf), log_lik)
        nll = -log_lik
        if self.needs_input_grad[0]:
            self.lp, self.lp_ext, self.alpha, self.nll = lp, lp_ext, alpha, nll
        if self.zero_infinity:
            nll = xp.where(xp.isinf(nll), lp.dtype.type(0), nll)
        return nll

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        lp, lp_ext, alpha, nll = self.lp, self.lp_ext, self.alpha, self.nll
        t_max, n, c = lp.shape
        length = self.ext.shape[1]
        neg_inf = lp.dtype.type(-np.inf)
        il, tl = self.input_lengths, self.target_lengths
        positions = xp.arange(length)[None, :]
        end = (2 * tl)[:, None]
        starts = (positions == end) | ((positions == end - 1) & (tl[:, None] > 0))
        beta = xp.full((t_max, n, length), neg_inf, dtype=lp.dtype)
        skip = self.skip[:, 2:]
        step = xp.empty((n, length), dtype=lp.dtype)
        for t in range(t_max - 1, -1, -1):
            if t < t_max - 1:
                nxt = beta[t + 1]
                # beta flows from s + 1 and s + 2 back to s: the mirror image of the alpha step
                step[...] = nxt
                xp.logaddexp(step[:, :-1], nxt[:, 1:], out=step[:, :-1])
                xp.logaddexp(step[:, :-2], xp.where(skip, nxt[:, 2:], neg_inf), out=step[:, :-2])
                step += lp_ext[t]
            else:
                step.fill(neg_inf)
            first = (il - 1 == t)[:, None]
            beta[t] = xp.where(first, xp.where(starts, lp_ext[t], neg_inf), step)
        # alpha and beta both count frame t's own log-probability, hence one lp_ext subtracted
        with np.errstate(invalid="ignore", over="ignore"):
            occupancy = xp.exp(alpha + beta - lp_ext + nll[None, :, None])
        # sum the occupancy of every extended position into its class (a label may repeat)
        flat = (xp.arange(t_max)[:, None, None] * n + xp.arange(n)[None, :, None]) * c + self.ext[None]
        posterior = xp.bincount(flat.reshape(-1), weights=occupancy.reshape(-1), minlength=t_max * n * c)
        posterior = posterior.reshape(t_max, n, c).astype(lp.dtype, copy=False)
        inside = (xp.arange(t_max)[:, None] < il[None, :])[:, :, None]
        grad = xp.where(inside, xp.exp(lp) - posterior, lp.dtype.type(0)) * gy[None, :, None]
        if self.zero_infinity:
            grad = xp.where(xp.isinf(nll)[None, :, None], lp.dtype.type(0), grad)
        return grad


def _lengths(name: str, value: Any, n: int) -> np.ndarray:
    """Lengths given as a Tensor, a sequence or an int, as an int64 host array of shape ``(n,)``."""
    arr = to_device(value.array, CPU) if isinstance(value, Tensor) else np.asarray(value)
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"ctc_loss: {name} must hold integer lengths, got {arr.dtype}")
    arr = arr.astype(np.int64).reshape(-1)
    if arr.shape != (n,):
        raise ShapeError(f"ctc_loss: {name} must have one length per sample ({n},), got shape {tuple(arr.shape)}")
    if arr.size and arr.min() < 0:
        raise ArgumentError(f"ctc_loss: {name} must not be negative, got {int(arr.min())}")
    return arr


def _padded_targets(targets: np.ndarray, target_lengths: np.ndarray, n: int) -> np.ndarray:
    """Targets as ``(N, S)`` rows from padded ``(N, S')`` or concatenated ``(sum(target_lengths),)``."""
    width = int(target_lengths.max()) if n else 0
    if targets.ndim == 2:
        if targets.shape[0] != n or targets.shape[1] < width:
            raise ShapeError(
                f"ctc_loss: padded targets must be (N, S) with N={n} and S >= the longest target length "
                f"{width}, got {tuple(targets.shape)}"
            )
        return targets[:, :width]
    if targets.ndim == 1:
        total = int(target_lengths.sum())
        if targets.shape[0] != total:
            raise ShapeError(
                f"ctc_loss: concatenated targets must have sum(target_lengths) = {total} elements, got "
                f"{targets.shape[0]}"
            )
        starts = np.cumsum(target_lengths) - target_lengths
        index = starts[:, None] + np.arange(width)[None, :]
        inside = np.arange(width)[None, :] < target_lengths[:, None]
        return np.where(inside, targets[np.minimum(index, max(total - 1, 0))], 0)
    raise ShapeError(f"ctc_loss: targets must be (N, S) padded or (sum(target_lengths),) concatenated, "
                     f"got shape {tuple(targets.shape)}")


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths: Any, target_lengths: Any, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """CTC loss of ``log_probs: (T, N, C)`` (or unbatched ``(T, C)``), usually ``log_softmax`` output.

    ``targets``: ``(N, S)`` padded or ``(sum(target_lengths),)`` concatenated class indices (``(S,)``
    unbatched), never ``blank``; ``input_lengths``, ``target_lengths``: ``(N,)`` (or ``()``) Tensors,
    sequences or ints, ``input_lengths <= T``. -> scalar; ``(N,)`` (or ``()``) with ``reduction='none'``.
    ``'mean'`` divides each loss by its target length before averaging over the batch. A target that
    cannot be aligned to its frames has an infinite loss; ``zero_infinity`` makes that loss and its
    gradient 0.
    """
    reduction = _reduction(None, None, reduction, "ctc_loss")
    if log_probs.ndim not in (2, 3):
        raise ShapeError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got {tuple(log_probs.shape)}")
    if log_probs.dtype.kind != "f":
        raise DTypeError(f"ctc_loss: log_probs must be floating point, got {log_probs.dtype}")
    batched = log_probs.ndim == 3
    lp = log_probs if batched else reshape(log_probs, log_probs.shape[0], 1, log_probs.shape[1])
    t_max, n, c = lp.shape
    if not 0 <= blank < c:
        raise ArgumentError(f"ctc_loss: blank must be a class index in [0, {c}), got {blank}")
    il = _lengths("input_lengths", input_lengths, n)
    tl = _lengths("target_lengths", target_lengths, n)
    if il.size and il.max() > t_max:
        raise ArgumentError(f"ctc_loss: input_lengths must be at most T={t_max}, got {int(il.max())}")
    tg = to_device(targets.array, CPU) if isinstance(targets, Tensor) else np.asarray(targets)
    if tg.dtype.kind not in "iu" and not (tg.size == 0 and tg.dtype.kind == "f"):
        raise DTypeError(f"ctc_loss: targets must hold integer class indices, got {tg.dtype}")
    if not batched and tg.ndim != 1:
        raise ShapeError(f"ctc_loss: unbatched log_probs (T, C) need 1-d targets (S,), got {tuple(tg.shape)}")
    rows = _padded_targets(tg.astype(np.int64).reshape(1, -1) if not batched else tg.astype(np.int64), tl, n)
    inside = np.arange(rows.shape[1])[None, :] < tl[:, None]
    labels = rows[inside]
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        bad = labels[(labels < 0) | (labels >= c)][0]
        raise IndexOutOfRangeError(f"ctc_loss: target {int(bad)} is out of bounds for {c} classes (valid: 0..{c - 1})")
    if labels.size and (labels == blank).any():
        raise ArgumentError(f"ctc_loss: targets must not contain the blank label {blank} within their lengths")
    ext = np.full((n, 2 * rows.shape[1] + 1), blank, dtype=np.int64)
    ext[:, 1::2] = np.where(inside, rows, blank)
    skip = np.zeros(ext.shape, dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    xp = lp._xp
    losses = CTC(xp.asarray(ext), xp.asarray(skip), xp.asarray(il), xp.asarray(tl), zero_infinity)(lp)
    if reduction == "none":
        return losses if batched else reshape(losses, ())
    if reduction == "sum":
        return sum(losses)
    return mean(losses / Tensor._make(xp.asarray(np.maximum(tl, 1), dtype=lp.dtype)))
