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


def best_of_interleaved(fns: list[Callable[[], T]], repeat: int, *, warmup: bool = True) -> list[tuple[float, T]]:
    """``(best wall seconds, last result)`` for each callable, the callables taking turns every round, so load
    from other processes on a shared machine hits all of them alike; one untimed round first if ``warmup``."""
    if warmup:
        for fn in fns:
            fn()
    best: list[float] = [float("inf")] * len(fns)
    out: list = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            out[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return list(zip(best, out))
