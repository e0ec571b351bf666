"""Functionals without a family: ``gumbel_softmax`` and torch's argument helper ``assert_int_or_pair``."""

from __future__ import annotations

import warnings
from typing import Any

from hubkit.errors import ArgumentError
from hubkit.ops.activation import softmax
from hubkit.tensor import Tensor, empty_like, zeros_like


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """Samples from the Gumbel-softmax distribution (Jang et al., 2016): ``softmax((logits + g) / tau)`` with
    ``g = -log(Exponential(1))`` Gumbel noise from the global generator; same shape as ``logits``.

    With ``hard`` the result is the one-hot of the sample's argmax along ``dim`` in the forward pass, with
    the soft sample's gradient (the straight-through estimator: ``y_hard - y_soft.detach() + y_soft``).
    ``eps`` is deprecated and ignored, as in torch.
    """
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    gumbels = -empty_like(logits).exponential_().log()
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = zeros_like(logits).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def assert_int_or_pair(arg: Any, arg_name: str, message: str) -> None:
    """torch's check that ``arg`` is an int or a pair; raises with ``message.format(arg_name)`` otherwise."""
    if not (isinstance(arg, int) or (hasattr(arg, "__len__") and len(arg) == 2)):
        raise ArgumentError(message.format(arg_name))
