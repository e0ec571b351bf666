"""Gradient clipping and parameter/vector conversion (``torch.nn.utils`` names)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from hubkit._backend import get_array_module
from hubkit.errors import ArgumentError, GradError, ShapeError
from hubkit.tensor import Tensor


def _as_list(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients as if concatenated into one vector; gradients are multiplied
    in place by ``min(1, max_norm / (total_norm + 1e-6))``. Returns the total norm (a 0-d tensor)
    from before clipping.
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return Tensor._make(np.zeros((), dtype=np.float32))
    xp = get_array_module(grads[0].array)
    norm_type = float(norm_type)
    if norm_type == math.inf:
        per_grad = [xp.abs(g.array).max() if g.array.size else xp.zeros((), g.dtype) for g in grads]
        total = xp.max(xp.stack(per_grad))
    elif norm_type <= 0:
        raise ArgumentError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type}")
    else:
        per_grad = [xp.sum(xp.abs(g.array.astype(xp.float64, copy=False)) ** norm_type) for g in grads]
        total = xp.sum(xp.stack(per_grad)) ** (1.0 / norm_type)
    total = total.astype(grads[0].dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise GradError(
            f"the total norm of order {norm_type} for gradients is non-finite ({float(total)}), so it cannot be "
            "clipped; pass error_if_nonfinite=False to clip anyway"
        )
    coef = min(1.0, float(max_norm) / (float(total) + 1e-6))
    for g in grads:
        g.array *= g.array.dtype.type(coef)
    return Tensor._make(xp.asarray(total))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad._xp.clip(p.grad.array, -clip_value, clip_value, out=p.grad.array)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated: ``(sum of numels,)`` (a copy, not a view)."""
    params = list(parameters)
    if not params:
        raise ArgumentError("parameters_to_vector: got no parameters")
    xp = params[0]._xp
    return Tensor._make(xp.concatenate([p.array.reshape(-1) for p in params]))


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy slices of ``vec`` (1-d) into the parameters, in order, in place."""
    params = list(parameters)
    total = sum(p.array.size for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ShapeError(f"vector_to_parameters: expected a 1-d vector of {total} elements, got {tuple(vec.shape)}")
    offset = 0
    for p in params:
        n = p.array.size
        p.array[...] = vec.array[offset:offset + n].reshape(p.shape).astype(p.dtype, copy=False)
        offset += n
