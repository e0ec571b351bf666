"""ASGD (averaged stochastic gradient descent), following torch's update rule."""

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


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky, 1992).

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        g += weight_decay * p
        p *= 1 - lambd * eta;  p -= eta * g
        ax = p                     while mu == 1 (before t0)
        ax += mu * (p - ax)        afterwards
        eta = lr / (1 + lambd * lr * t)^alpha;  mu = 1 / max(1, t - t0)

    ``ax`` is the running average of the iterates; ``eta`` and ``mu`` are 0-d float32 state like torch's.
    ``foreach`` is accepted and changes nothing; ``capturable=True``/``differentiable=True`` are refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0.0, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        check_lr("ASGD", lr)
        check_nonnegative("ASGD", weight_decay=weight_decay)
        check_flags("ASGD", capturable=capturable, differentiable=differentiable)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, lambd, alpha, t0 = to_scalar(group["lr"]), group["lambd"], group["alpha"], group["t0"]
        weight_decay = group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["eta"] = scalar_state(lr)
                state["mu"] = scalar_state(1.0)
                state["ax"] = Tensor._make(xp.zeros_like(p.array))
            step = increment_step(state)
            if weight_decay != 0:
                g = g + weight_decay * p.array
            eta = float(state["eta"].array)
            p.array *= 1 - lambd * eta
            p.array -= eta * g
            ax, mu = state["ax"].array, float(state["mu"].array)
            if mu != 1:
                ax += mu * (p.array - ax)
            else:
                ax[...] = p.array
            state["eta"].array[...] = lr / ((1 + lambd * lr * step) ** alpha)
            state["mu"].array[...] = 1 / max(1, step - t0)
