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


# ---------------------------------------------------------------- each side in a process of its own
# In one process the two libraries share more than the machine: hubkit's allocator settings are process-wide
# (hubkit/kernels/_malloc.py), and torch then runs faster than it does for its own users (ResNet-50's batch-16
# forward 850-870 -> 580-620 ms), and hubkit's numba threads share the OpenMP library torch loaded. A user runs
# one of them, so the scripts can also time each side in a worker process of its own (``--processes``): the
# script runs itself with ``--worker SIDE`` (plus its own arguments), the worker builds its side and answers
# ``serve``'s protocol, and the parent has the workers take turns. The torch worker imports hubkit only to make
# the shared weights, with ``HUBKIT_MALLOC_TUNING=0``, so it keeps glibc's defaults as torch's users do.

# Pause before each round: the other worker's idle OpenMP threads spin for a while after its round (torch's
# for 300,000 iterations) and would take a core from this round's start.
SETTLE_SECONDS = 0.1


def serve(fn: Callable[[], object]) -> None:
    """The worker's side: say it is ready (``@``), then for each count read from stdin call ``fn`` that many
    times and print ``@wall cpu`` (seconds)."""
    import sys

    print("@", flush=True)
    for line in sys.stdin:
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(int(line)):
            fn()
        print(f"@{time.perf_counter() - start} {time.process_time() - start_cpu}", flush=True)


class Worker:
    """A worker process started with ``command`` (it calls :func:`serve`); ``run(n)`` has it call its function
    ``n`` times and returns ``(wall, cpu)`` seconds. ``torch_side``: run it with hubkit's allocator tuning off."""

    def __init__(self, command: list[str], torch_side: bool = False) -> None:
        import os
        import subprocess

        env = dict(os.environ, HUBKIT_MALLOC_TUNING="0") if torch_side else None
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self._reply()  # built

    def _reply(self) -> list[float]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@"):
                return [float(v) for v in line[1:].split()]
        raise SystemExit(f"bench worker exited with status {self.proc.wait()} (its error is above)")

    def run(self, calls: int) -> tuple[float, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{calls}\n")
        self.proc.stdin.flush()
        wall, cpu = self._reply()
        return wall, cpu

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def best_of_processes(commands: list[tuple[list[str], bool]], repeat: int) -> list[float]:
    """Best wall seconds of one call for each ``(command, torch_side)`` worker (see :class:`Worker`), the
    workers taking turns every round after one untimed call each."""
    workers: list[Worker] = []
    try:
        for command, torch_side in commands:
            workers.append(Worker(command, torch_side))
        for w in workers:
            w.run(1)
        best = [float("inf")] * len(workers)
        for _ in range(repeat):
            for i, w in enumerate(workers):
                time.sleep(SETTLE_SECONDS)
                best[i] = min(best[i], w.run(1)[0])
        return best
    finally:
        for w in workers:
            w.close()


def products_description() -> str:
    """Where hubkit's CPU matrix products run, for a benchmark's header: MKL (the mkl extra), or hubkit's AVX-512
    float32 kernel and numpy's BLAS."""
    import hubkit
    from hubkit.kernels import _jit, _sgemm

    mkl = hubkit.backends.mkl
    if mkl.is_available() and mkl.enabled:
        return "hubkit CPU products: MKL (" + (mkl.version() or "").split(" Product")[0] + ")"
    own = _jit.compiled() is not None and _sgemm.microkernels() is not None
    return ("hubkit CPU products: " + ("hubkit's AVX-512 kernel for float32, " if own else "")
            + "numpy's BLAS (MKL not used: " + (mkl.unavailable_reason() or "switched off") + ")")
