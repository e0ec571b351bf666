"""hubkit: a model-zoo hub and dataset toolkit on a small numpy/cupy deep-learning engine.

    import hubkit
    model = hubkit.load("resnet18", pretrained=True)

The engine (tensors, autograd) is imported eagerly; everything heavier (the hub, the zoo,
datasets, requests, tqdm, cupy) is imported on first use, so ``import hubkit`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from hubkit.errors import HubkitError
from hubkit.random import Generator, initial_seed, manual_seed

__version__ = "0.1.0"

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
}

_LAZY_ATTRS: dict[str, str] = {}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_ATTRS))


__all__ = ["Generator", "HubkitError", "initial_seed", "manual_seed"]
