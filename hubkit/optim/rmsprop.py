"""RMSprop (plain, centered, with momentum), following torch's update rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit.errors import ArgumentError
from hubkit.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e; centered variant from Graves, 2013).

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g += weight_decay * p
        v = alpha * v + (1 - alpha) * g^2
        avg = sqrt(v - mean_g^2) if centered (mean_g = alpha * mean_g + (1 - alpha) * g) else sqrt(v)
        avg += eps
        buf = momentum * buf + g / avg;  p -= lr * buf      (momentum > 0)
        p -= lr * g / avg                                    (otherwise)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        for name, value in (("learning rate", lr), ("epsilon", eps), ("momentum", momentum),
                            ("weight_decay", weight_decay), ("alpha", alpha)):
            if value < 0.0:
                raise ArgumentError(f"RMSprop: invalid {name} {value}; expected a value >= 0")
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                    "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state.get(p)
            if not state:
                state = self.state[p] = {"step": 0, "square_avg": xp.zeros_like(p.array)}
                if momentum > 0:
                    state["momentum_buffer"] = xp.zeros_like(p.array)
                if centered:
                    state["grad_avg"] = xp.zeros_like(p.array)
            state["step"] += 1
            if weight_decay != 0:
                g = g + weight_decay * p.array
            square_avg = state["square_avg"]
            square_avg *= alpha
            square_avg += (1 - alpha) * (g * g)
            if centered:
                grad_avg = state["grad_avg"]
                grad_avg *= alpha
                grad_avg += (1 - alpha) * g
                avg = xp.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = xp.sqrt(square_avg)
            avg += eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += g / avg
                p.array -= lr * buf
            else:
                p.array -= lr * (g / avg)
