"""RMSprop (plain, centered, with momentum), following torch's update rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e; centered variant from Graves, 2013).

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g += weight_decay * p
        v = alpha * v + (1 - alpha) * g^2
        avg = sqrt(v - mean_g^2) if centered (mean_g = alpha * mean_g + (1 - alpha) * g) else sqrt(v)
        avg += eps
        buf = momentum * buf + g / avg;  p -= lr * buf      (momentum > 0)
        p -= lr * g / avg                                    (otherwise)

    ``foreach`` is accepted and changes nothing; ``capturable=True``/``differentiable=True`` are refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        check_lr("RMSprop", lr)
        check_nonnegative("RMSprop", epsilon=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        check_flags("RMSprop", capturable=capturable, differentiable=differentiable)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = to_scalar(group["lr"]), group["alpha"], group["eps"]
        weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["square_avg"] = Tensor._make(xp.zeros_like(p.array))
                if momentum > 0:
                    state["momentum_buffer"] = Tensor._make(xp.zeros_like(p.array))
                if centered:
                    state["grad_avg"] = Tensor._make(xp.zeros_like(p.array))
            increment_step(state)
            if weight_decay != 0:
                g = g + weight_decay * p.array
            square_avg = state["square_avg"].array
            square_avg *= alpha
            square_avg += (1 - alpha) * (g * g)
            if centered:
                grad_avg = state["grad_avg"].array
                grad_avg *= alpha
                grad_avg += (1 - alpha) * g
                avg = xp.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = xp.sqrt(square_avg)
            avg += eps
            if momentum > 0:
                buf = state["momentum_buffer"].array
                buf *= momentum
                buf += g / avg
                p.array -= lr * buf
            else:
                p.array -= lr * (g / avg)
