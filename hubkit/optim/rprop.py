"""Rprop (resilient backpropagation), following torch's update rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hubkit.errors import ArgumentError
from hubkit.optim.optimizer import Optimizer, check_flags, check_lr, increment_step, scalar_state, to_scalar
from hubkit.tensor import Tensor


class Rprop(Optimizer):
    """Rprop (Riedmiller & Braun, 1993), the variant without weight backtracking.

    Per element, with ``g`` the gradient (negated when ``maximize``)::

        s = sign(g * g_prev)
        step_size = clamp(step_size * (etaplus if s > 0 else etaminus if s < 0 else 1), *step_sizes)
        g = 0 where s < 0        (a sign change: skip this element once)
        p -= sign(g) * step_size;  g_prev = g

    ``step_size`` starts at ``lr``. ``foreach`` is accepted and changes nothing;
    ``capturable=True``/``differentiable=True`` are refused.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        check_lr("Rprop", lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ArgumentError(f"Rprop: invalid eta values {etas[0]}, {etas[1]}; expected 0 < etaminus < 1 < "
                                "etaplus")
        check_flags("Rprop", capturable=capturable, differentiable=differentiable)
        defaults = {"lr": lr, "etas": tuple(etas), "step_sizes": tuple(step_sizes), "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            g = self._grad(p, group["maximize"])
            state = self.state[p]
            if not state:
                state["step"] = scalar_state(0.0)
                state["prev"] = Tensor._make(xp.zeros_like(p.array))
                state["step_size"] = Tensor._make(xp.full_like(p.array, to_scalar(group["lr"])))
            increment_step(state)
            prev, step_size = state["prev"].array, state["step_size"].array
            sign = xp.sign(g * prev)
            factor = xp.where(sign > 0, etaplus, xp.where(sign < 0, etaminus, 1.0)).astype(step_size.dtype)
            step_size *= factor
            xp.clip(step_size, step_size_min, step_size_max, out=step_size)
            g = xp.where(sign < 0, 0, g).astype(p.dtype, copy=False)
            p.array -= xp.sign(g) * step_size
            prev[...] = g
