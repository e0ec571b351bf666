"""hubkit: a model-zoo hub and dataset toolkit on a small numpy/cupy deep-learning engine.

    import hubkit
    model = hubkit.load("resnet18", pretrained=True)

The engine (tensors, autograd) is imported eagerly; everything heavier (the hub, the zoo,
datasets, requests, tqdm, cupy) is imported on first use, so ``import hubkit`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from hubkit._backend import Device
from hubkit._backend import Device as device
from hubkit._config import (
    are_deterministic_algorithms_enabled,
    compile,
    get_deterministic_debug_mode,
    get_float32_matmul_precision,
    get_num_interop_threads,
    is_deterministic_algorithms_warn_only_enabled,
    is_storage,
    is_warn_always_enabled,
    set_deterministic_debug_mode,
    set_float32_matmul_precision,
    set_num_interop_threads,
    set_printoptions,
    set_warn_always,
    use_deterministic_algorithms,
)
from hubkit.autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from hubkit.errors import HubkitError
from hubkit.ops.table import FUNCTIONS as _FUNCTIONS
from hubkit.random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from hubkit.tensor import (
    Tensor,
    arange,
    as_tensor,
    bool_,
    complex64,
    double,
    empty,
    empty_like,
    eye,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    full_like,
    get_default_device,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    is_tensor,
    linspace,
    long,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    set_default_device,
    set_default_dtype,
    tensor,
    uint8,
    zeros,
    zeros_like,
)
from hubkit.tensor import bool_ as bool  # noqa: A004  (PyTorch's name)
from hubkit.tensor import float32 as float  # noqa: A004
from hubkit.tensor import int32 as int  # noqa: A004

__version__ = "0.1.0"

# the top-level tensor functions (hubkit.sin, hubkit.cat, ...): one table, hubkit/ops/table.py
globals().update(_FUNCTIONS)

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "nn": "hubkit.nn",
    "optim": "hubkit.optim",
    "data": "hubkit.data",
    "transforms": "hubkit.transforms",
    "hub": "hubkit.hub",
    "zoo": "hubkit.zoo",
    "datasets": "hubkit.datasets",
    "errors": "hubkit.errors",
    "utils": "hubkit.utils",
    "cuda": "hubkit.cuda",
    "accelerator": "hubkit.accelerator",
    "backends": "hubkit.backends",
    "linalg": "hubkit.linalg",
}

_LAZY_ATTRS: dict[str, str] = {
    "save": "hubkit.hub.checkpoint.state",
    "load_state": "hubkit.hub.checkpoint.state",
    "load": "hubkit.hub.api",
    "list_models": "hubkit.hub.api",
    "model_info": "hubkit.hub.api",
    "get_weights": "hubkit.hub.api",
    "get_model": "hubkit.hub.torchvision_api",
    "get_model_weights": "hubkit.hub.torchvision_api",
    "get_weight": "hubkit.hub.torchvision_api",
    "set_num_threads": "hubkit.kernels._threads",
    "dropout": "hubkit.nn.functional",
    "layer_norm": "hubkit.nn.functional",
    "get_num_threads": "hubkit.kernels._threads",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
        globals()[name] = value
        return value
    from hubkit.ops import unsupported

    if name in unsupported.FUNCTIONS:  # documented by PyTorch, not provided: say so (UnsupportedError)
        raise unsupported.unsupported_error(f"torch.{name}")
    raise AttributeError(f"module 'hubkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_ATTRS))


def cuda_is_available() -> bool:
    """True when cupy is installed and a CUDA GPU is visible (``hubkit.cuda.is_available()``)."""
    from hubkit import cuda

    return cuda.is_available()
