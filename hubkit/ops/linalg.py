"""Matrix products: matmul (batched, broadcasting), mm, bmm, linear."""

from __future__ import annotations

from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import DTypeError, ShapeError
from hubkit.tensor import Tensor


class MatMul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        self.a_1d, self.b_1d = a.ndim == 1, b.ndim == 1
        return a @ b

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        if self.a_1d and self.b_1d:  # a dot product: gy is 0-d
            return (gy * self.b if self.needs_input_grad[0] else None,
                    gy * self.a if self.needs_input_grad[1] else None)
        # lift 1-d operands to matrices so one rule covers every case
        if self.a_1d:
            gy = xp.expand_dims(gy, -2)
        if self.b_1d:
            gy = xp.expand_dims(gy, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            b = self.b[:, None] if self.b_1d else self.b
            ga = gy @ xp.swapaxes(b, -1, -2)
            if self.a_1d:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:]) if ga.ndim > 2 else ga[0]
        if self.needs_input_grad[1]:
            a = self.a[None, :] if self.a_1d else self.a
            gb = xp.swapaxes(a, -1, -2) @ gy
            if self.b_1d:
                gb = gb[..., 0]
        return ga, gb


def _check(op: str, a: Tensor, b: Tensor) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"{op}: both arguments need at least 1 dim, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(f"{op}: {tuple(a.shape)} @ {tuple(b.shape)}: inner dims {k_a} and {k_b} differ")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    for x, y in zip(reversed(batch_a), reversed(batch_b)):
        if x != y and x != 1 and y != 1:
            raise ShapeError(
                f"{op}: {tuple(a.shape)} @ {tuple(b.shape)}: batch dims {tuple(batch_a)} and {tuple(batch_b)} "
                "cannot be broadcast"
            )


def matmul(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Matrix product with numpy's rules: 1-d operands are vectors, leading dims broadcast.

    ``(..., n, k) @ (..., k, m) -> (..., n, m)``
    """
    from hubkit.ops.elementwise import as_operands

    a, b = as_operands(input, other, "matmul")
    _check("matmul", a, b)
    return MatMul()(a, b)


def mm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002
    """``(n, k) @ (k, m) -> (n, m)``; both must be 2-d."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expects two 2-d tensors, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002
    """``(b, n, k) @ (b, k, m) -> (b, n, m)``; no broadcasting."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ShapeError(
            f"bmm: expects two 3-d tensors with the same batch size, got {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


class Linear(Function):
    """``y = x @ W.T + b`` in one node: saves a transpose and a broadcast add in the graph."""

    def forward(self, x: Any, w: Any, b: Any) -> Any:
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        # (*, in) as one 2-d GEMM: numpy would loop a GEMM per leading index, cupy would copy w.T per call
        y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(*x.shape[:-1], w.shape[0])
        if b is not None:
            y += b
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        gx = None
        if self.needs_input_grad[0]:
            gx = (gy.reshape(-1, gy.shape[-1]) @ self.w).reshape(*gy.shape[:-1], self.w.shape[1])
        gw = gb = None
        if self.needs_input_grad[1]:
            x2 = self.x.reshape(-1, self.x.shape[-1])
            gw = gy.reshape(-1, gy.shape[-1]).T @ x2
        if self.needs_input_grad[2]:
            gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0)
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """``input: (*, in_features)``, ``weight: (out_features, in_features)``, ``bias: (out_features,)``
    -> ``(*, out_features)``.
    """
    if input.ndim == 0 or weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input {tuple(input.shape)} @ weight.T {tuple(weight.shape[::-1])}: "
            f"inner dims {input.shape[-1] if input.ndim else None} and {weight.shape[1] if weight.ndim == 2 else None} "
            "differ (weight must be (out_features, in_features))"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
    if input.dtype != weight.dtype:
        raise DTypeError(
            f"linear: input dtype {input.dtype} and weight dtype {weight.dtype} differ; cast one with .to()"
        )
    return Linear()(input, weight, bias)
