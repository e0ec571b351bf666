"""``Parameter``: a Tensor that a Module registers as learnable (``requires_grad=True`` by default)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hubkit.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that ``Module.__setattr__`` registers in ``_parameters``.

    ``Parameter(t)`` shares ``t``'s memory (no copy), like ``torch.nn.Parameter``.
    """

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        super().__init__(data.array if isinstance(data, Tensor) else data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_rebuild_parameter, (self.array, self.requires_grad, self.grad))

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(self.array.copy(), requires_grad=self.requires_grad)
        if self.grad is not None:
            out.grad = Tensor._make(self.grad.array.copy())
        memo[id(self)] = out
        return out


def _rebuild_parameter(data: Any, requires_grad: bool, grad: Tensor | None) -> Parameter:
    p = Parameter(data, requires_grad=requires_grad)
    p.grad = grad
    return p
