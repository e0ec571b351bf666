"""Process-wide switches training scripts set at the top: determinism, matmul precision, warnings, threads,
print options and ``compile`` (PyTorch's ``torch.use_deterministic_algorithms`` and friends).

Each one keeps PyTorch's name, arguments, defaults and errors. What it changes in hubkit:

- **Determinism.** hubkit's CPU kernels are deterministic, and its CUDA kernels are written without atomics
  (gather-style col2im and pooling backward, cuBLAS GEMMs) — except the scatter-adds, where repeated indices
  accumulate into one element: ``index_add``, ``scatter_add``, ``scatter_reduce('sum'/'mean')``,
  ``index_put(accumulate=True)``, ``put(accumulate=True)``, the backward of advanced indexing and of
  ``embedding``/``embedding_bag``, and ``bincount``/``histogram`` with weights. cupy's ``add.at`` does those
  with floating-point atomics, whose order (so whose rounding) varies from run to run. With
  ``use_deterministic_algorithms(True)`` hubkit runs them deterministically instead (a sort by target
  position and a fixed-order segmented sum, ``hubkit._backend.deterministic_scatter_add``), as torch does
  for its scatter-add family. No hubkit op is left without a deterministic implementation, so nothing
  raises and ``warn_only`` has nothing to warn about; it is recorded and reported as torch reports it.
- **Matmul precision.** ``set_float32_matmul_precision("high" / "medium")`` lets torch use TF32 or bfloat16
  tensor cores for float32 GEMMs. hubkit's GEMMs (numpy's BLAS, cuBLAS through cupy) always compute in
  full FP32, i.e. ``"highest"``; the setting is validated and recorded so scripts that set and read it work.
- **compile.** hubkit has no graph compiler. ``compile(model)`` returns ``model`` itself (a Module or a
  function), which computes what the compiled one would; ``@compile`` and ``@compile(mode=...)`` work too.
- **Inter-op threads.** hubkit has no inter-op thread pool (ops run one after another on the calling
  thread; ``set_num_threads`` sizes the BLAS pool); the count is validated and recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hubkit._tensor_str import get_printoptions, printoptions, set_printoptions
from hubkit.errors import ArgumentError, ArgumentTypeError

__all__ = [
    "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
    "is_deterministic_algorithms_warn_only_enabled", "set_deterministic_debug_mode", "get_deterministic_debug_mode",
    "set_float32_matmul_precision", "get_float32_matmul_precision", "compile", "set_printoptions",
    "get_printoptions", "printoptions", "set_warn_always", "is_warn_always_enabled", "get_num_interop_threads",
    "set_num_interop_threads", "is_storage",
]

_deterministic = False
_deterministic_warn_only = False
_matmul_precision = "highest"
_warn_always = False
_interop_threads = max(1, (os.cpu_count() or 2) // 2)  # torch's default: the physical cores


# ---------------------------------------------------------------- determinism


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Make ops that have a deterministic and a faster nondeterministic implementation use the former.

    In hubkit that is the CUDA scatter-add family (see the module docstring); everything else is
    deterministic already. ``warn_only`` is recorded: no hubkit op lacks a deterministic implementation.
    """
    global _deterministic, _deterministic_warn_only
    if not isinstance(mode, bool):
        raise ArgumentTypeError(f"use_deterministic_algorithms(): argument 'mode' must be bool, not "
                                f"{type(mode).__name__}")
    if not isinstance(warn_only, bool):
        raise ArgumentTypeError(f"use_deterministic_algorithms(): argument 'warn_only' must be bool, not "
                                f"{type(warn_only).__name__}")
    _deterministic = mode
    _deterministic_warn_only = warn_only


def are_deterministic_algorithms_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(True)`` is in effect."""
    return _deterministic


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether ``use_deterministic_algorithms(..., warn_only=True)`` was set."""
    return _deterministic_warn_only


_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_deterministic_debug_mode(debug_mode: str | int) -> None:
    """Torch's other spelling of ``use_deterministic_algorithms``: ``"default"``/0 (off), ``"warn"``/1
    (on, warn only) or ``"error"``/2 (on)."""
    if isinstance(debug_mode, str):
        if debug_mode not in _DEBUG_MODES:
            raise ArgumentError(f"invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got "
                                f"{debug_mode}")
        debug_mode = _DEBUG_MODES[debug_mode]
    elif isinstance(debug_mode, int) and not isinstance(debug_mode, bool):
        if debug_mode not in (0, 1, 2):
            raise ArgumentError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    else:
        raise ArgumentTypeError(f"debug_mode must be str or int, but got {type(debug_mode).__name__}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    """0 when deterministic algorithms are off, 1 when on with ``warn_only``, 2 when on."""
    if not _deterministic:
        return 0
    return 1 if _deterministic_warn_only else 2


# ---------------------------------------------------------------- matmul precision

_PRECISIONS = ("highest", "high", "medium")


def set_float32_matmul_precision(precision: str) -> None:
    """Record the float32 matmul precision torch would use: ``"highest"`` (the default), ``"high"`` or
    ``"medium"``. hubkit's GEMMs always compute in full FP32 whatever is set (no TF32/bfloat16 paths), so
    results are those of ``"highest"``. Another value is ignored with a warning, as in torch."""
    global _matmul_precision
    if precision not in _PRECISIONS:
        import warnings

        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "set_float32_matmul_precision call has no effect.", UserWarning, stacklevel=2)
        return
    _matmul_precision = precision


def get_float32_matmul_precision() -> str:
    """The last precision set with ``set_float32_matmul_precision`` (``"highest"`` by default)."""
    return _matmul_precision


# ---------------------------------------------------------------- compile

_COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile(model: Callable | None = None, *, fullgraph: bool = False, dynamic: bool | None = None,  # noqa: A001
            backend: str | Callable | None = None, mode: str | None = None, options: dict | None = None,
            name: str | None = None, disable: bool = False, recompile_limit: int | None = None,
            isolate_recompiles: bool = False, dynamic_shapes: Any = None) -> Any:
    """``torch.compile``: hubkit runs eagerly and has no graph compiler, so this returns ``model`` itself.

    A compiled torch model computes what the eager one does (that is torch.compile's contract), so
    returning the Module or function unchanged keeps every caller's semantics; only the speed-up is
    absent. Used as ``compile(model)``, ``@compile`` or ``@compile(mode=...)``. torch's arguments are
    accepted and checked as torch checks them (``mode`` one of its four names, not together with
    ``options``); they change nothing. Unlike torch, the result is the model (no ``_orig_mod`` wrapper),
    so its ``state_dict`` keys carry no ``_orig_mod.`` prefix.
    """
    if mode is not None and options is not None:
        raise ArgumentError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode is not None and mode not in _COMPILE_MODES:
        raise ArgumentError(f"Unrecognized mode={mode}, should be one of: {', '.join(_COMPILE_MODES)}")
    if model is None:
        return lambda fn: fn
    if not callable(model):
        raise ArgumentTypeError(f"compile(): model must be a Module or a callable, got {type(model).__name__}")
    return model


# ---------------------------------------------------------------- warnings, threads, storages


def set_warn_always(b: bool) -> None:
    """Record torch's "warn every time, not once" flag; hubkit's warnings go through Python's ``warnings``
    module, whose filters decide how often they show."""
    global _warn_always
    _warn_always = bool(b)


def is_warn_always_enabled() -> bool:
    return _warn_always


def set_num_interop_threads(num: int) -> None:
    """Record the inter-op thread count. hubkit has no inter-op pool (ops run in order on the calling
    thread); ``set_num_threads`` sizes the intra-op BLAS pool."""
    global _interop_threads
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise ArgumentError(f"set_num_interop_threads expects a positive integer, got {num!r}")
    _interop_threads = num


def get_num_interop_threads() -> int:
    """The count last given to ``set_num_interop_threads`` (default: half the logical CPUs, like torch's
    physical-core count)."""
    return _interop_threads


def is_storage(obj: Any) -> bool:
    """False for everything: hubkit tensors wrap numpy/cupy arrays and have no storage objects."""
    return False
