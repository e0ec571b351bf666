"""Shared pieces of the table-driven op tests (test_ops_*.py): input makers and the two checks.

A case is ``(name, fn, make)``: ``fn(ns, *inputs)`` calls the op through ``ns``, which is ``hubkit``
or ``torch`` (so one lambda tests both), and ``make(rng)`` returns the numpy inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as HF


def _namespace(m: Any) -> Any:
    if m is HF:
        return hubkit
    import torch

    return torch


def _made(name: str, make: Callable) -> list[Any]:
    """The case's inputs, always as a list (a maker may return one array)."""
    made = make(rng_for(name))
    return [made] if isinstance(made, np.ndarray) else list(made)


def check_gradient(name: str, fn: Callable, make: Callable, **kwargs: Any) -> None:
    """float64 central differences against hubkit's autograd."""
    gradcheck(lambda *xs: fn(hubkit, *xs), _made(name, make), **kwargs)


def check_torch(name: str, fn: Callable, make: Callable, dtype: Any, **kwargs: Any) -> None:
    """Forward values, dtypes and input gradients against PyTorch."""
    compare_with_torch(lambda m, *xs: fn(_namespace(m), *xs), _made(name, make), dtype=dtype, **kwargs)


def n(*shape: int, scale: float = 1.0) -> Callable:
    """Standard normal values."""
    return lambda r: r.standard_normal(shape) * scale


def uniform(lo: float, hi: float, *shape: int) -> Callable:
    return lambda r: r.uniform(lo, hi, shape)


def away_from_zero(*shape: int) -> Callable:
    return lambda r: r.uniform(0.5, 2.0, shape) * r.choice([-1.0, 1.0], shape)


def distinct(*shape: int) -> Callable:
    """Values spaced well apart (no ties, no kinks hit by the finite differences)."""
    def make(r: np.random.Generator) -> np.ndarray:
        size = int(np.prod(shape))
        return ((r.permutation(size) - size / 2) * 0.37 + r.uniform(-0.05, 0.05, size)).reshape(shape)

    return make


def inputs(*makers: Callable) -> Callable:
    return lambda r: [m(r) for m in makers]


def case_ids(cases: list[tuple]) -> list[str]:
    return [c[0] for c in cases]

