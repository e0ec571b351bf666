"""Adafactor, following torch 2.14's ``torch.optim.Adafactor`` step for step."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.errors import ArgumentError, DTypeError
from hubkit.optim.optimizer import Optimizer, check_lr, increment_step, scalar_state, to_scalar
from hubkit.tensor import Tensor


def lerp_(start: Any, end: Any, weight: float) -> Any:
    """``start += weight * (end - start)`` in place, with torch's two formulas (the one from ``end`` when
    ``|weight| >= 0.5``, which keeps ``weight = 1`` exact)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        diff = end - start
        diff *= 1 - weight
        start[...] = end - diff
    return start


def _norm(a: Any) -> float:
    return float(get_array_module(a).sqrt((a * a).sum()))


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018) in torch's variant: for a parameter with two or more dims the
    second moment is kept as a row factor ``R`` (``(..., m, 1)``) and a column factor ``C`` (``(..., 1, n)``),
    for a vector in full. With ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        beta2_t = 1 - t ** beta2_decay;   rho = min(lr, 1 / sqrt(t))
        alpha = max(eps2, RMS(p)) * rho
        p *= 1 - lr * weight_decay
        R = lerp(R, mean(g^2 over the last dim), 1 - beta2_t);  C = lerp(C, mean(g^2 over dim -2), ...)
        V = R @ C / max(mean(R over dim -2), eps1)          (vectors: V = lerp(V, g^2, 1 - beta2_t))
        U = g / sqrt(max(V, eps1^2));  p -= alpha * U / max(1, RMS(U) / d)

    ``eps = (eps1, eps2)``; ``eps1=None`` means the parameter dtype's machine epsilon. State: ``step``,
    ``row_var`` and ``col_var`` (or ``variance``). ``foreach`` is accepted and changes nothing.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, *,
                 foreach: bool | None = None, maximize: bool = False) -> None:
        check_lr("Adafactor", lr)
        if not beta2_decay <= 0.0:
            raise ArgumentError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not eps[0] >= 0.0:
            raise ArgumentError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not eps[1] >= 0.0:
            raise ArgumentError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not d >= 1.0:
            raise ArgumentError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not weight_decay >= 0.0:
            raise ArgumentError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, beta2_decay, d = to_scalar(group["lr"]), group["beta2_decay"], group["d"]
        weight_decay = group["weight_decay"]
        eps1, eps2 = group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.dtype.kind == "c":
                raise DTypeError("Adafactor does not support complex parameters")
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                if g.ndim > 1:
                    state["row_var"] = Tensor._make(xp.zeros((*g.shape[:-1], 1), dtype=g.dtype))
                    state["col_var"] = Tensor._make(xp.zeros((*g.shape[:-2], 1, g.shape[-1]), dtype=g.dtype))
                else:
                    state["variance"] = Tensor._make(xp.zeros_like(g))
            if eps1 is None:  # torch sets it from the first parameter's dtype and keeps it for the group
                eps1 = float(np.finfo(p.dtype).eps)
            step = increment_step(state)
            one_minus_beta2 = step ** beta2_decay
            rho = min(lr, 1 / step ** 0.5)
            alpha = max(eps2, _norm(p.array) / p.array.size ** 0.5) * rho
            if weight_decay != 0:
                p.array *= 1 - lr * weight_decay
            if g.ndim > 1:
                row_var, col_var = state["row_var"].array, state["col_var"].array
                lerp_(row_var, (g * g).sum(axis=-1, keepdims=True) / g.shape[-1], one_minus_beta2)
                lerp_(col_var, (g * g).sum(axis=-2, keepdims=True) / g.shape[-2], one_minus_beta2)
                estimate = row_var @ col_var
                estimate /= xp.maximum(row_var.mean(axis=-2, keepdims=True), eps1)
            else:
                variance = state["variance"].array
                lerp_(variance, g * g, one_minus_beta2)
                estimate = variance.copy()
            update = 1 / xp.sqrt(xp.maximum(estimate, eps1 * eps1))
            update *= g
            denom = max(1.0, _norm(update) / (math.sqrt(update.size) * d))
            p.array += update * (-alpha / denom)
