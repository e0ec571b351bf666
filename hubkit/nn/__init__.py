"""hubkit.nn: Module, Parameter, layers, init and utilities, with PyTorch's names.

``import hubkit`` imports ``hubkit.nn.functional`` (Tensor's methods live there), which runs this
file first; so nothing is imported here eagerly. ``hubkit.nn.Linear`` and friends resolve on first
access (PEP 562), which keeps ``import hubkit`` fast and free of import-order cycles.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("functional", "init", "utils", "fuse", "modules", "module", "parameter", "parallel")

_ATTRS: dict[str, str] = {
    "Module": "hubkit.nn.module",
    "RemovableHandle": "hubkit.nn.module",
    "Parameter": "hubkit.nn.parameter",
    "UninitializedParameter": "hubkit.nn.parameter",
    "UninitializedBuffer": "hubkit.nn.parameter",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"hubkit.nn.{name}")
    if name in _ATTRS:
        value = getattr(importlib.import_module(_ATTRS[name]), name)
    else:
        modules = importlib.import_module("hubkit.nn.modules")
        if name not in modules.__all__:
            from hubkit.ops import unsupported

            if name in unsupported.NN_MODULES:  # documented by torch, not provided: say so (UnsupportedError)
                raise unsupported.unsupported_error(f"torch.nn.{name}")
            raise AttributeError(f"module 'hubkit.nn' has no attribute {name!r}")
        value = getattr(modules, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    modules = importlib.import_module("hubkit.nn.modules")
    return sorted(set(globals()) | set(_SUBMODULES) | set(_ATTRS) | set(modules.__all__))
