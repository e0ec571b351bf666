"""Adadelta, following torch's update rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError
from hubkit.kernels import cpu_elementwise
from hubkit.optim.optimizer import (
    Optimizer,
    check_flags,
    check_lr,
    check_nonnegative,
    increment_step,
    scalar_state,
    to_scalar,
)
from hubkit.tensor import Tensor


def _flush_below(dtype: np.dtype, eps: float) -> float:
    """Below what value Adadelta's state entries are set to 0: the dtype's smallest normal number, when ``eps`` is
    large enough that ``state + eps == eps`` for every smaller entry (then the update is the same to the last bit),
    else 0 (no flushing). Without it, the state of a unit that stops getting gradients decays by ``rho`` every step
    through the subnormal range, where every CPU operation on it takes a microcode assist: pytorch/examples' MNIST
    network slowed from 40 to 65-70 ms per step after 700 steps (a million of its 2.4 million state entries were
    subnormal). The stored state then differs from torch's by less than that smallest normal number."""
    info = np.finfo(dtype)
    return float(info.tiny) if eps >= float(info.tiny) * 2.0 ** (info.nmant + 2) else 0.0


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012).

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g += weight_decay * p
        v = rho * v + (1 - rho) * g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta^2
        p -= lr * delta

    State: ``step``, ``square_avg`` (v) and ``acc_delta`` (u). ``foreach`` is accepted and changes nothing;
    ``capturable=True``/``differentiable=True`` are refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        check_lr("Adadelta", lr)
        if not 0.0 <= rho <= 1.0:
            raise ArgumentError(f"Adadelta: invalid rho value {rho}; expected 0 <= rho <= 1")
        check_nonnegative("Adadelta", epsilon=eps, weight_decay=weight_decay)
        check_flags("Adadelta", capturable=capturable, differentiable=differentiable)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, rho, eps, weight_decay = to_scalar(group["lr"]), group["rho"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["square_avg"] = Tensor._make(xp.zeros_like(p.array))
                state["acc_delta"] = Tensor._make(xp.zeros_like(p.array))
            increment_step(state)
            square_avg, acc_delta = state["square_avg"].array, state["acc_delta"].array
            flush = _flush_below(square_avg.dtype, eps)
            if xp is np and cpu_elementwise.adadelta_update(p.array, g, square_avg, acc_delta, lr, rho, eps,
                                                            weight_decay, flush):  # fmt: skip
                continue  # one compiled pass (numba): the same arithmetic as below
            if weight_decay != 0:
                g = g + weight_decay * p.array
            square_avg *= rho
            square_avg += (1 - rho) * (g * g)
            if flush:
                square_avg[square_avg < flush] = 0
            delta = xp.sqrt(acc_delta + eps)
            delta /= xp.sqrt(square_avg + eps)
            delta *= g
            acc_delta *= rho
            acc_delta += (1 - rho) * (delta * delta)
            if flush:
                acc_delta[acc_delta < flush] = 0
            delta *= lr
            p.array -= delta
