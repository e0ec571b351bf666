"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (torch's update rule)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit import kernels
from hubkit.errors import ArgumentError
from hubkit.optim.optimizer import Optimizer, check_flags, check_lr, check_nonnegative, to_scalar
from hubkit.tensor import Tensor


class SGD(Optimizer):
    """Stochastic gradient descent.

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g += weight_decay * p
        buf = g                                   (first step)
        buf = momentum * buf + (1 - dampening) * g (later steps)
        g = g + momentum * buf if nesterov else buf
        p -= lr * g

    On the GPU the update of a whole parameter group is one kernel launch (torch's ``foreach`` path, also the
    default); ``foreach=False`` makes it one launch per parameter, and on the CPU both are a loop over the
    parameters. ``fused`` is accepted and changes nothing; ``differentiable=True`` is refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        check_lr("SGD", lr)
        check_nonnegative("SGD", momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ArgumentError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        check_flags("SGD", differentiable=differentiable, fused=fused, foreach=foreach)
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach, "differentiable": differentiable,
                    "fused": fused}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = to_scalar(group["lr"]), group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        states = [self.state[p] for p in params] if momentum != 0 else None
        bufs = [None if s.get("momentum_buffer") is None else s["momentum_buffer"].array for s in states] \
            if states is not None else [None] * len(params)  # fmt: skip
        args = (lr, momentum, dampening, weight_decay, nesterov, maximize)
        if group["foreach"] is False:  # torch's for-loop implementation: one update per parameter
            new = [kernels.sgd_update(p.array, p.grad.array, b, *args) for p, b in zip(params, bufs)]
        else:
            new = kernels.sgd_update_many([p.array for p in params], [p.grad.array for p in params], bufs, *args)
        if states is not None:
            for state, old, buf in zip(states, bufs, new):
                if old is None:
                    state["momentum_buffer"] = Tensor._make(buf)
