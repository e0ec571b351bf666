"""Adamax (Adam with the infinity norm), following torch's update rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit.optim.optimizer import (
    Optimizer,
    check_betas,
    check_flags,
    check_lr,
    check_nonnegative,
    increment_step,
    scalar_state,
    to_scalar,
)
from hubkit.tensor import Tensor


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2014, section 7).

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        g += weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)
        p -= lr / (1 - beta1^t) * m / u

    State: ``step``, ``exp_avg`` (m) and ``exp_inf`` (u). ``foreach`` is accepted and changes nothing;
    ``capturable=True``/``differentiable=True`` are refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False) -> None:
        check_lr("Adamax", lr)
        check_nonnegative("Adamax", epsilon=eps, weight_decay=weight_decay)
        betas = check_betas("Adamax", betas)
        check_flags("Adamax", capturable=capturable, differentiable=differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = to_scalar(group["lr"]), group["betas"], group["eps"]
        weight_decay = group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["exp_avg"] = Tensor._make(xp.zeros_like(p.array))
                state["exp_inf"] = Tensor._make(xp.zeros_like(p.array))
            step = increment_step(state)
            if weight_decay != 0:
                g = g + weight_decay * p.array
            exp_avg, exp_inf = state["exp_avg"].array, state["exp_inf"].array
            exp_avg += (1 - beta1) * (g - exp_avg)
            exp_inf *= beta2
            xp.maximum(exp_inf, xp.abs(g) + eps, out=exp_inf)
            clr = lr / (1 - beta1**step)
            p.array -= clr * (exp_avg / exp_inf)
