"""glibc allocator settings for the CPU engine, applied once on first kernel use (``_threads.get_num_threads``).

A training step allocates and frees the same large activations and gradients every step. With glibc's
defaults, blocks above the dynamic mmap threshold (at most 32 MiB) are fresh ``mmap`` regions and the top of
the heap is given back to the OS as soon as it is free, so every step takes a page fault per 4 KiB page
again: 32,000 faults and about 80 ms of system time per ResNet-18 step at batch 16, 4,700 faults (15% of the
CPU time) per MNIST-network step. Worse, two threads faulting in one fresh output contend in the kernel: a
BatchNorm over a 51 MB activation took 27 ms on two threads against 9 ms on one. Keeping freed memory in the
heap (``M_MMAP_THRESHOLD`` 256 MiB, ``M_TRIM_THRESHOLD`` 1 GiB) removes the faults (that BatchNorm: 5 ms on
two threads); the peak resident memory of a ResNet-18 step rose 3% (701 -> 725 MiB), and memory freed at
the end of training stays with the process until it exits or allocates it again. PyTorch's CPU allocator
keeps freed blocks the same way.

``HUBKIT_MALLOC_TUNING=0`` leaves the allocator alone; other C libraries (musl, macOS) are never touched.
"""

from __future__ import annotations

import ctypes
import platform
import sys

from hubkit.kernels._jit import switched_off

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 256 << 20
_TRIM_THRESHOLD = 1 << 30
_done = False


def tune() -> bool:
    """Apply the settings once (glibc on Linux only); whether they are in effect."""
    global _done
    if _done:
        return True
    if switched_off("HUBKIT_MALLOC_TUNING"):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done
