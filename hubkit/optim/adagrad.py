"""Adagrad, following torch's update rule (state exists from construction, like torch's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit.errors import ArgumentError
from hubkit.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011).

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        g += weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum += g^2
        p -= clr * g / (sqrt(sum) + eps)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        for name, value in (("learning rate", lr), ("lr_decay", lr_decay), ("weight_decay", weight_decay),
                            ("initial_accumulator_value", initial_accumulator_value), ("epsilon", eps)):
            if value < 0.0:
                raise ArgumentError(f"Adagrad: invalid {name} {value}; expected a value >= 0")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "maximize": maximize}
        super().__init__(params, defaults)

    def _init_group_state(self, group: dict[str, Any]) -> None:
        for p in group["params"]:
            self.state[p] = {"step": 0,
                             "sum": p._xp.full_like(p.array, group["initial_accumulator_value"])}

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps, weight_decay = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            state["step"] += 1
            if weight_decay != 0:
                g = g + weight_decay * p.array
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            state["sum"] += g * g
            std = xp.sqrt(state["sum"])
            std += eps
            p.array -= clr * (g / std)
