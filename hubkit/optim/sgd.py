"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (torch's update rule)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit import kernels
from hubkit.errors import ArgumentError
from hubkit.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent.

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g += weight_decay * p
        buf = g                                   (first step)
        buf = momentum * buf + (1 - dampening) * g (later steps)
        g = g + momentum * buf if nesterov else buf
        p -= lr * g
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False) -> None:
        if lr < 0.0:
            raise ArgumentError(f"SGD: invalid learning rate {lr}; expected lr >= 0")
        if momentum < 0.0:
            raise ArgumentError(f"SGD: invalid momentum {momentum}; expected momentum >= 0")
        if weight_decay < 0.0:
            raise ArgumentError(f"SGD: invalid weight_decay {weight_decay}; expected weight_decay >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ArgumentError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state.setdefault(p, {}) if momentum != 0 else {}
            buf = kernels.sgd_update(p.array, p.grad.array, state.get("momentum_buffer"), lr, momentum, dampening,
                                     weight_decay, nesterov, maximize)  # fmt: skip
            if buf is not None:
                state["momentum_buffer"] = buf
