"""Adam and AdamW (with amsgrad), following torch's update rule step for step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit import kernels
from hubkit.errors import ArgumentError
from hubkit.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014).

    Per parameter, with ``g`` the gradient (negated when ``maximize``) and ``t`` the step::

        p *= 1 - lr * weight_decay            (decoupled_weight_decay, i.e. AdamW)
        g += weight_decay * p                 (otherwise: L2 penalty folded into the gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_hat = max(v_hat, v) if amsgrad else v
        p -= lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
    """

    _decoupled_default = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool | None = None) -> None:
        name = type(self).__name__
        if lr < 0.0:
            raise ArgumentError(f"{name}: invalid learning rate {lr}; expected lr >= 0")
        if eps < 0.0:
            raise ArgumentError(f"{name}: invalid epsilon {eps}; expected eps >= 0")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ArgumentError(f"{name}: invalid beta parameter at index {i}: {beta}; expected 0 <= beta < 1")
        if weight_decay < 0.0:
            raise ArgumentError(f"{name}: invalid weight_decay {weight_decay}; expected weight_decay >= 0")
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_default
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            state = self.state.get(p)
            if not state:
                state = self.state[p] = {"step": 0, "exp_avg": xp.zeros_like(p.array),
                                         "exp_avg_sq": xp.zeros_like(p.array)}
                if amsgrad:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.array)
            state["step"] += 1
            kernels.adam_update(p.array, p.grad.array, state["exp_avg"], state["exp_avg_sq"],
                                state.get("max_exp_avg_sq") if amsgrad else None, state["step"], lr, beta1, beta2, eps,
                                weight_decay, decoupled, maximize)  # fmt: skip


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr * weight_decay`` each step.

    Default ``weight_decay`` is 1e-2, like torch.
    """

    _decoupled_default = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
