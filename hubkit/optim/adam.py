"""Adam and AdamW (with amsgrad), following torch's update rule step for step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit import kernels
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


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014).

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        p *= 1 - lr * weight_decay            (decoupled_weight_decay, i.e. AdamW)
        g += weight_decay * p                 (otherwise: L2 penalty folded into the gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_hat = max(v_hat, v) if amsgrad else v
        p -= lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)

    ``foreach``/``fused`` are accepted and change nothing (on the GPU the update is one fused kernel per
    parameter); ``capturable=True`` and ``differentiable=True`` are refused.
    """

    _decoupled_default = False

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool | None = None) -> None:
        name = type(self).__name__
        check_lr(name, lr)
        check_nonnegative(name, epsilon=eps, weight_decay=weight_decay)
        betas = check_betas(name, betas)
        check_flags(name, capturable=capturable, differentiable=differentiable, fused=fused, foreach=foreach)
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_default
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = to_scalar(group["lr"]), group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["exp_avg"] = Tensor._make(xp.zeros_like(p.array))
                state["exp_avg_sq"] = Tensor._make(xp.zeros_like(p.array))
                if amsgrad:
                    state["max_exp_avg_sq"] = Tensor._make(xp.zeros_like(p.array))
            step = increment_step(state)
            kernels.adam_update(p.array, p.grad.array, state["exp_avg"].array, state["exp_avg_sq"].array,
                                state["max_exp_avg_sq"].array if amsgrad else None, step, lr, to_scalar(beta1),
                                to_scalar(beta2), eps, weight_decay, decoupled, maximize)  # fmt: skip


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr * weight_decay`` each step.

    Default ``weight_decay`` is 1e-2, like torch.
    """

    _decoupled_default = True

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
