"""Gradient clipping and parameter/vector conversion (``torch.nn.utils`` names)."""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable

import numpy as np

from hubkit._backend import get_array_module
from hubkit.errors import ArgumentError, GradError, ShapeError
from hubkit.tensor import Tensor


def _as_list(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated into one vector (a 0-d tensor
    of the first tensor's dtype; ``tensor(0.)`` for none). ``norm_type`` may be ``inf`` or ``-inf``; with 0 it
    is, as in torch (a norm of the per-tensor norms), the number of tensors that hold a nonzero. ``foreach`` is
    accepted for compatibility: every path is one vectorized pass here."""
    arrays = [t.array for t in _as_list(tensors)]
    if not arrays:
        return Tensor._make(np.zeros((), dtype=np.float32))
    xp = get_array_module(arrays[0])
    p = float(norm_type)
    if p in (math.inf, -math.inf):
        extreme = xp.max if p == math.inf else xp.min
        per_tensor = [extreme(xp.abs(a)) for a in arrays if a.size]
        total = extreme(xp.stack(per_tensor)) if per_tensor else xp.zeros((), arrays[0].dtype)
    elif p == 0:  # torch takes the norm of the per-tensor norms: the count of tensors with a nonzero entry
        total = xp.asarray(sum(bool(xp.count_nonzero(a)) for a in arrays), dtype=xp.float64)
    else:
        per_tensor = [xp.sum(xp.abs(a.astype(xp.float64, copy=False)) ** p) for a in arrays]
        total = xp.sum(xp.stack(per_tensor)) ** (1.0 / p)
    total = xp.asarray(total).astype(arrays[0].dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise GradError(
            f"the total norm of order {p} for gradients from `parameters` is non-finite ({float(total)}), so it "
            "cannot be clipped; pass error_if_nonfinite=False to scale the gradients by it anyway"
        )
    return Tensor._make(total)


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor | float,
                          foreach: bool | None = None) -> None:
    """Multiply every gradient in place by ``min(1, max_norm / (total_norm + 1e-6))``."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    coef = min(1.0, float(max_norm) / (float(total_norm) + 1e-6))
    for g in grads:
        g.array *= g.array.dtype.type(coef)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients as if concatenated into one vector (``get_total_norm``);
    gradients are multiplied in place by ``min(1, max_norm / (total_norm + 1e-6))``
    (``clip_grads_with_norm_``). Returns the total norm (a 0-d tensor) from before clipping.
    """
    if isinstance(parameters, types.GeneratorType):
        parameters = list(parameters)
        if not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    parameters = _as_list(parameters)
    total = get_total_norm([p.grad for p in parameters if p.grad is not None], norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_norm(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Deprecated alias of ``clip_grad_norm_`` (warns, as torch does)."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
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
