"""RAdam (rectified Adam), following torch's update rule."""

from __future__ import annotations

import math
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


class RAdam(Optimizer):
    """RAdam (Liu et al., 2019).

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        p *= 1 - lr * weight_decay            (decoupled_weight_decay)
        g += weight_decay * p                 (otherwise)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        m_hat = m / (1 - beta1^t)
        p -= lr * m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps)    when rho_t > 5 (r_t: the rectification)
        p -= lr * m_hat                                                 otherwise (an SGD-with-momentum step)

    ``foreach`` is accepted and changes nothing; ``capturable=True``/``differentiable=True`` are refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_lr("RAdam", lr)
        check_nonnegative("RAdam", epsilon=eps, weight_decay=weight_decay)
        betas = check_betas("RAdam", betas)
        check_flags("RAdam", capturable=capturable, differentiable=differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable, "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = to_scalar(group["lr"]), group["betas"], group["eps"]
        weight_decay = group["weight_decay"]
        rho_inf = 2 / (1 - beta2) - 1
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["exp_avg"] = Tensor._make(xp.zeros_like(p.array))
                state["exp_avg_sq"] = Tensor._make(xp.zeros_like(p.array))
            step = increment_step(state)
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.array *= 1 - lr * weight_decay
                else:
                    g = g + weight_decay * p.array
            exp_avg, exp_avg_sq = state["exp_avg"].array, state["exp_avg_sq"].array
            exp_avg += (1 - beta1) * (g - exp_avg)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * (g * g)
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            update = exp_avg / bias_correction1
            rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
            if rho_t > 5.0:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                denom = xp.sqrt(exp_avg_sq)
                denom += eps
                update *= (lr * rect * math.sqrt(bias_correction2)) / denom
            else:
                update *= lr
            p.array -= update
