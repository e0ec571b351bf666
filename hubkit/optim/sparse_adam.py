"""SparseAdam: Adam that updates only the rows a gradient touches (for embeddings).

hubkit has no sparse tensors, so gradients here are dense. torch's SparseAdam gets a sparse gradient
whose indices are the rows an ``nn.Embedding(sparse=True)`` looked up; hubkit takes the rows of the dense
gradient (along dim 0) that hold any nonzero value as those indices, and applies torch's masked update to
exactly them: the moments and the weights of every other row stay as they are. A looked-up row whose
gradient is exactly zero therefore counts as untouched here, while torch would decay its moments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from hubkit.errors import ArgumentError
from hubkit.optim.optimizer import Optimizer, check_betas, check_lr, to_scalar
from hubkit.tensor import Tensor


class SparseAdam(Optimizer):
    """Masked Adam (torch's ``SparseAdam``): on the rows with a nonzero gradient, with ``t`` the step::

        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
        p -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)

    Rows without gradient keep their ``m``, ``v`` and weights. ``step`` is a Python int, as torch keeps it.
    Unlike Adam there is no weight decay (as torch). ``params`` must be dense Tensors (hubkit has no others).
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, maximize: bool = False) -> None:
        check_lr("SparseAdam", lr)
        if not to_scalar(lr) > 0.0:
            raise ArgumentError(f"SparseAdam: invalid learning rate {lr}; expected lr > 0")
        if not eps > 0.0:
            raise ArgumentError(f"SparseAdam: invalid epsilon value {eps}; expected eps > 0")
        betas = check_betas("SparseAdam", betas)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "maximize": maximize}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.dtype.kind == "c":
                    raise ArgumentError("SparseAdam does not support complex parameters")

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = to_scalar(group["lr"]), group["betas"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = p._xp
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = Tensor._make(xp.zeros_like(p.array))
                state["exp_avg_sq"] = Tensor._make(xp.zeros_like(p.array))
            state["step"] += 1
            g = self._grad(p, group["maximize"])
            if g.ndim == 0:
                rows = xp.asarray([0]) if bool(g != 0) else xp.asarray([], dtype=xp.int64)
                g, param, exp_avg, exp_avg_sq = (a.reshape(1) for a in (g, p.array, state["exp_avg"].array,
                                                                         state["exp_avg_sq"].array))
            else:
                rows = xp.flatnonzero(xp.any(g.reshape(g.shape[0], -1) != 0, axis=1))
                param, exp_avg, exp_avg_sq = p.array, state["exp_avg"].array, state["exp_avg_sq"].array
            if rows.size == 0:
                continue
            g_rows = g[rows]
            m = exp_avg[rows]
            m += (1 - beta1) * (g_rows - m)
            v = exp_avg_sq[rows]
            v += (1 - beta2) * (g_rows * g_rows - v)
            exp_avg[rows] = m
            exp_avg_sq[rows] = v
            step = state["step"]
            step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
            denom = xp.sqrt(v)
            denom += eps
            param[rows] -= step_size * (m / denom)
