"""Adagrad, following torch's update rule (state exists from construction, like torch's)."""

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


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011).

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        g += weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum += g^2
        p -= clr * g / (sqrt(sum) + eps)

    ``foreach``/``fused`` are accepted and change nothing; ``differentiable=True`` is refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        check_lr("Adagrad", lr)
        check_nonnegative("Adagrad", lr_decay=lr_decay, weight_decay=weight_decay,
                          initial_accumulator_value=initial_accumulator_value, epsilon=eps)
        check_flags("Adagrad", differentiable=differentiable, fused=fused, foreach=foreach)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)

    def _init_group_state(self, group: dict[str, Any]) -> None:
        for p in group["params"]:
            self.state[p] = {"step": scalar_state(0.0),
                             "sum": Tensor._make(p._xp.full_like(p.array, group["initial_accumulator_value"]))}

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps, weight_decay = to_scalar(group["lr"]), group["lr_decay"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            step = increment_step(state)
            if weight_decay != 0:
                g = g + weight_decay * p.array
            clr = lr / (1 + (step - 1) * lr_decay)
            total = state["sum"].array
            total += g * g
            std = xp.sqrt(total)
            std += eps
            p.array -= clr * (g / std)
