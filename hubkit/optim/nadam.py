"""NAdam (Adam with Nesterov momentum and momentum decay), following torch's update rule."""

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


class NAdam(Optimizer):
    """NAdam (Dozat, 2016), with torch's momentum schedule.

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        p *= 1 - lr * weight_decay            (decoupled_weight_decay)
        g += weight_decay * p                 (otherwise)
        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));  mu_{t+1} likewise
        mu_product *= mu_t
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
        denom = sqrt(v / (1 - beta2^t)) + eps
        p -= lr * (1 - mu_t) / (1 - mu_product) * g / denom
        p -= lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom

    State: ``step``, ``mu_product`` (0-d float32 like torch's, so the product rounds the same way),
    ``exp_avg`` and ``exp_avg_sq``. ``foreach`` is accepted and changes nothing;
    ``capturable=True``/``differentiable=True`` are refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        check_lr("NAdam", lr)
        check_nonnegative("NAdam", epsilon=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        betas = check_betas("NAdam", betas)
        check_flags("NAdam", capturable=capturable, differentiable=differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = to_scalar(group["lr"]), group["betas"], group["eps"]
        weight_decay, momentum_decay = group["weight_decay"], group["momentum_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["mu_product"] = scalar_state(1.0)
                state["exp_avg"] = Tensor._make(xp.zeros_like(p.array))
                state["exp_avg_sq"] = Tensor._make(xp.zeros_like(p.array))
            step = increment_step(state)
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.array *= 1 - lr * weight_decay
                else:
                    g = g + weight_decay * p.array
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
            mu_product = state["mu_product"].array
            mu_product *= mu
            mu_product = float(mu_product)
            exp_avg, exp_avg_sq = state["exp_avg"].array, state["exp_avg_sq"].array
            exp_avg += (1 - beta1) * (g - exp_avg)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * (g * g)
            denom = xp.sqrt(exp_avg_sq / (1 - beta2**step))
            denom += eps
            p.array -= (lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
            p.array -= (lr * mu_next / (1.0 - mu_product * mu_next)) * (exp_avg / denom)
