"""Timing helper shared by the bench scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def best_of(fn: Callable[[], T], repeat: int, *, warmup: bool = True) -> tuple[float, T]:
    """``(best wall seconds of repeat calls, the last call's result)``, after one untimed call if ``warmup``."""
    if warmup:
        fn()
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out
