"""Bilinear: ``y = x1^T W x2 + b`` for each output feature."""

from __future__ import annotations

from typing import Any

from hubkit.autograd import Function
from hubkit.errors import DTypeError, ShapeError
from hubkit.tensor import Tensor


class Bilinear(Function):
    """``x1: (n, in1)``, ``x2: (n, in2)``, ``weight: (out, in1, in2)``, ``bias: (out,)`` or None -> ``(n, out)``.

    One node of two GEMMs: ``x1 @ W`` (``W`` seen as ``(in1, out * in2)``) and then a product with ``x2``
    summed over ``in2``; composed from primitives the same math records eight nodes.
    """

    def forward(self, x1: Any, x2: Any, w: Any, b: Any) -> Any:
        out, in1, in2 = w.shape
        self.w_mat = w.transpose(1, 0, 2).reshape(in1, out * in2)  # (in1, out*in2)
        t = (x1 @ self.w_mat).reshape(x1.shape[0], out, in2)
        self.x1, self.x2 = x1, x2
        self.t = t if self.needs_input_grad[1] else None
        y = (t * x2[:, None, :]).sum(axis=2)
        if b is not None:
            y += b
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any, Any]:
        need_x1, need_x2, need_w, need_b = self.needs_input_grad
        n, out = gy.shape
        in1, in2 = self.x1.shape[1], self.x2.shape[1]
        gx1 = gx2 = gw = gb = None
        u = (gy[:, :, None] * self.x2[:, None, :]).reshape(n, out * in2) if need_x1 or need_w else None
        if need_x1:
            gx1 = u @ self.w_mat.T
        if need_x2:
            gx2 = (gy[:, :, None] * self.t).sum(axis=1)
        if need_w:
            gw = (self.x1.T @ u).reshape(in1, out, in2).transpose(1, 0, 2)
        if need_b:
            gb = gy.sum(axis=0)
        return gx1, gx2, gw, gb


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.bilinear``: ``input1 (*, in1)``, ``input2 (*, in2)`` (same leading dims),
    ``weight (out, in1, in2)``, ``bias (out,)`` -> ``(*, out)`` with ``y_o = input1^T weight_o input2 + bias_o``."""
    if weight.ndim != 3:
        raise ShapeError(f"bilinear: weight must be 3-d (out_features, in1_features, in2_features), got "
                         f"{tuple(weight.shape)}")
    out, in1, in2 = weight.shape
    if input1.ndim == 0 or input2.ndim == 0 or input1.shape[:-1] != input2.shape[:-1]:
        raise ShapeError(f"bilinear: input1 {tuple(input1.shape)} and input2 {tuple(input2.shape)} must have the "
                         "same size except in their last dimension")
    if input1.shape[-1] != in1 or input2.shape[-1] != in2:
        raise ShapeError(f"bilinear: inputs' last dims ({input1.shape[-1]}, {input2.shape[-1]}) must be weight's "
                         f"in1_features and in2_features ({in1}, {in2}) for weight {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (out,):
        raise ShapeError(f"bilinear: bias has shape {tuple(bias.shape)}, expected ({out},)")
    if not input1.dtype == input2.dtype == weight.dtype:
        raise DTypeError(f"bilinear: input1, input2 and weight dtypes ({input1.dtype}, {input2.dtype}, "
                         f"{weight.dtype}) differ; cast them with .to()")
    lead = input1.shape[:-1]
    y = Bilinear()(input1.reshape(-1, in1), input2.reshape(-1, in2), weight, bias)
    return y.reshape(*lead, out)
