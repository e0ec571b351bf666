"""Muon, following torch 2.14's ``torch.optim.Muon`` step for step (its bfloat16 Newton-Schulz included)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.optim.adafactor import lerp_
from hubkit.optim.optimizer import Optimizer, check_lr, to_scalar
from hubkit.tensor import Tensor

EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


def round_to_bfloat16(a: Any) -> Any:
    """``a`` rounded to the nearest bfloat16 value (ties to even), returned as float32.

    numpy and cupy have no bfloat16; bfloat16 is float32 with the low 16 mantissa bits dropped, so
    rounding the float32 bit pattern gives exactly the values torch's bfloat16 tensors hold (a float64
    input is rounded to float32 first, as torch's conversion does).
    """
    xp = get_array_module(a)
    f = xp.asarray(a, dtype=np.float32)
    bits = f.view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xFFFF0000)
    return xp.where(xp.isnan(f), f, rounded.view(np.float32))


def zeropower_via_newtonschulz(grad: Any, ns_coefficients: tuple[float, float, float], ns_steps: int,
                               eps: float) -> Any:
    """torch's quintic Newton-Schulz orthogonalization of a 2-d ``grad``, in bfloat16 arithmetic as torch
    does it: each matrix product accumulates in float32 and every op's result is rounded to bfloat16
    (``beta * C + alpha * A @ B`` rounds once, as torch's bfloat16 ``addmm``). Returns float32 values
    that are exact bfloat16 numbers, shaped like ``grad``."""
    if ns_steps >= 100:
        raise ArgumentError("Number of steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ShapeError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ArgumentError("Coefficients must be a tuple of exactly 3 values")
    xp = get_array_module(grad)
    a, b, c = (np.float32(v) for v in ns_coefficients)
    x = round_to_bfloat16(grad)
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    norm = round_to_bfloat16(xp.sqrt((x * x).sum(dtype=np.float32)))
    x = round_to_bfloat16(x / xp.maximum(norm, np.float32(round_to_bfloat16(np.float32(eps)))))
    for _ in range(ns_steps):
        gram = round_to_bfloat16(x @ x.T)
        gram_update = round_to_bfloat16(b * gram + c * (gram @ gram))
        x = round_to_bfloat16(a * x + gram_update @ x)
    return x.T if tall else x


def _adjust_lr(lr: float, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    elif adjust_lr_fn == "spectral_unclamped":
        ratio = math.sqrt(rows / cols)
    else:
        ratio = 1.0
    return lr * ratio


class Muon(Optimizer):
    """Muon (Jordan et al., 2024): momentum SGD whose update is orthogonalized, for 2-d parameters only.

    Per parameter, with ``g`` the gradient::

        B = lerp(B, g, 1 - momentum)                       (the momentum buffer)
        U = lerp(g, B, momentum) if nesterov else B
        O = NewtonSchulz(U)                                 (``ns_steps`` quintic steps with ``ns_coefficients``)
        p *= 1 - lr * weight_decay
        p -= adjust_lr(lr, p.shape) * O

    ``adjust_lr_fn``: ``None``/``"original"`` scales by ``sqrt(max(1, rows / cols))``, ``"match_rms_adamw"``
    by ``0.2 * sqrt(max(rows, cols))``, ``"spectral_unclamped"`` by ``sqrt(rows / cols)``. As in torch the
    orthogonalization runs in bfloat16 (hubkit rounds to bfloat16 explicitly, having no such dtype), so the
    updates are torch's. Optimize biases, embeddings and other non-2-d parameters with e.g. AdamW.
    """

    def __init__(self, params: Iterable[Any], lr: float | Tensor = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C), eps: float = EPS,
                 ns_steps: int = DEFAULT_NS_STEPS, adjust_lr_fn: str | None = None) -> None:
        check_lr("Muon", lr)
        if not momentum >= 0.0:
            raise ArgumentError(f"momentum should be >= 0 but is: {momentum}")
        if not weight_decay >= 0.0:
            raise ArgumentError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw", "spectral_unclamped"):
            raise ArgumentError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                    "ns_coefficients": ns_coefficients, "eps": eps, "ns_steps": ns_steps,
                    "adjust_lr_fn": adjust_lr_fn}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ShapeError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{tuple(p.shape)}")

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, weight_decay, momentum = to_scalar(group["lr"]), group["weight_decay"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.dtype.kind == "c":
                raise DTypeError("Muon does not support complex parameters")
            g = p.grad.array
            if g.ndim != 2:
                raise ShapeError("Param gradient must be a 2D matrix")
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = Tensor._make(p._xp.zeros_like(g))
            buf = lerp_(state["momentum_buffer"].array, g, 1 - momentum)
            update = lerp_(g.copy(), buf, momentum) if group["nesterov"] else buf
            ortho = zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
            adjusted = _adjust_lr(lr, group["adjust_lr_fn"], p.shape)
            p.array *= 1 - lr * weight_decay
            p.array += ortho.astype(p.dtype) * (-adjusted)
