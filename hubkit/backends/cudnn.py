"""``hubkit.backends.cudnn``: torch's cuDNN flags, read by hubkit's GPU convolutions and batch norms
(``kernels/cudnn.py``).

hubkit finds cuDNN in NVIDIA's wheel (``nvidia-cudnn-cu12``/``-cu13``: the ``cuda12``/``cuda13`` extras install
it, and PyTorch's CUDA builds do too) or at ``HUBKIT_CUDNN_LIBRARY``; without it, GPU convolutions and batch
norms run on hubkit's own kernels and these flags change nothing. Defaults are torch's:

- ``enabled`` (True): convolutions and 4-d batch norms on cuDNN when it is available.
- ``allow_tf32`` (True): float32 convolutions may use TF32 tensor cores (about 1e-3 relative error).
- ``deterministic`` (False): True keeps to algorithms cuDNN reports as deterministic.
- ``benchmark`` (False): True times cuDNN's algorithms once per geometry and keeps the fastest.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """True when a cuDNN library was found and loads (a GPU is not needed to answer), unless a first GPU
    convolution found it built for another CUDA version than cupy's (then ``unavailable_reason()`` says so)."""
    from hubkit.kernels import cudnn

    return cudnn.library() is not None and cudnn._checked_runtime is not False


def version() -> int | None:
    """cuDNN's version number (e.g. 92400 for 9.24.0), or None when it is not available."""
    from hubkit.kernels import cudnn

    lib = cudnn.library()
    return None if lib is None else lib.version


def unavailable_reason() -> str | None:
    """Why cuDNN is not used (not found, or built for another CUDA version than cupy's), or None."""
    from hubkit.kernels import cudnn

    return cudnn.unavailable_reason()


@contextlib.contextmanager
def flags(enabled: bool = False, benchmark: bool = False, benchmark_limit: int | None = 10,
          deterministic: bool = False, allow_tf32: bool = True) -> Iterator[None]:  # fmt: skip
    """``with hubkit.backends.cudnn.flags(enabled=False): ...``: torch's context manager, with its defaults (every
    flag is set for the block, ``enabled`` to False unless given) and all of them restored afterwards.
    ``benchmark_limit`` is accepted; hubkit's benchmark mode always times every algorithm."""
    module = sys.modules[__name__]
    names = ("enabled", "benchmark", "deterministic", "allow_tf32")
    saved = {name: getattr(module, name) for name in names}
    try:
        for name, value in zip(names, (enabled, benchmark, deterministic, allow_tf32)):
            setattr(module, name, bool(value))
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
