"""``hubkit.save`` and ``hubkit.load_state``: state dicts to and from checkpoint files.

    hubkit.save(model, "net.safetensors")          # or a dict {name: Tensor | ndarray}
    state = hubkit.load_state("net.safetensors")   # {name: Tensor}
    model.load_state_dict(state)

The format follows the file suffix (``.safetensors``; ``.pth``/``.pt``/``.bin`` for PyTorch's zip
format, readable by ``torch.load(weights_only=True)``; ``.npz``) unless ``format=`` says otherwise.
Reading detects the format from the file's bytes; see :mod:`hubkit.hub.formats`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub.formats import SaveFormat, load_checkpoint, save_checkpoint

__all__ = ["load_state", "save"]

_SUFFIX_FORMATS: dict[str, SaveFormat] = {".safetensors": "safetensors", ".pth": "torch", ".pt": "torch",
                                          ".bin": "torch", ".npz": "npz"}


def save(module_or_state: Any, path: str | os.PathLike, *, format: SaveFormat | None = None) -> None:
    """Write a module's ``state_dict()``, or a mapping ``{name: Tensor | ndarray}``, to ``path``.

    Tensors on a GPU are copied to the host; an array that appears under several names (tied
    weights) is written once where the format allows it (torch). The write is atomic.
    """
    if format is None:
        suffix = Path(path).suffix.lower()
        format = _SUFFIX_FORMATS.get(suffix)
        if format is None:
            raise CheckpointError(f"cannot tell the checkpoint format from the suffix {suffix!r} of {path}; "
                                  f"use one of {sorted(_SUFFIX_FORMATS)} or pass format='safetensors', "
                                  "'torch' or 'npz'")
    state = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    if not isinstance(state, Mapping):
        raise CheckpointError(f"hubkit.save expects a module (with .state_dict()) or a mapping "
                              f"{{name: tensor}}, found a {type(module_or_state).__name__}")
    host: dict[int, np.ndarray] = {}  # one host copy per device array, so tied weights stay tied
    arrays = {}
    for name, value in state.items():
        arrays[name] = _to_numpy(value, name, host)
    save_checkpoint(arrays, path, format=format)


def load_state(
    path: str | os.PathLike,
    *,
    mmap: bool = True,
    key: str | Sequence[str] | None = None,
    bfloat16: Literal["float32", "uint16"] = "float32",
) -> dict[str, Any]:
    """Read a state dict ``{name: Tensor}`` from any checkpoint :func:`load_checkpoint` reads.

    The tensors wrap the loaded arrays without a copy (memory-mapped with ``mmap=True``); where
    the tensor module is not available they are returned as ndarrays. ``key`` unwraps a nested
    container such as ``{"epoch": 3, "model": {...}}``.
    """
    arrays = load_checkpoint(path, mmap=mmap, key=key, bfloat16=bfloat16)
    try:
        from hubkit.tensor import from_numpy
    except ImportError:
        return arrays
    return {name: from_numpy(array) for name, array in arrays.items()}


def _to_numpy(value: Any, name: str, host: dict[int, np.ndarray]) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    data = getattr(value, "array", None)  # a hubkit Tensor keeps its numpy/cupy array in .array
    if isinstance(data, np.ndarray):
        return data
    device_array = data if _is_cupy(data) else value if _is_cupy(value) else None
    if device_array is not None:
        if id(device_array) not in host:
            host[id(device_array)] = device_array.get()
        return host[id(device_array)]
    if callable(getattr(value, "numpy", None)):
        return np.asarray(value.numpy())
    if isinstance(value, np.generic | int | float | bool):
        return np.asarray(value)
    raise CheckpointError(f"cannot save {name!r}: expected a Tensor or an ndarray, found a {type(value).__name__}")


def _is_cupy(array: Any) -> bool:
    return hasattr(array, "__cuda_array_interface__") and callable(getattr(array, "get", None))
