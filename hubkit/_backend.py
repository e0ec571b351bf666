"""The numpy/cupy seam: devices, the array module of an array, and moving arrays between devices.

Everything device-specific in the engine goes through ``get_array_module``; cupy is imported
only when a CUDA device is asked for or a cupy array is seen.
"""

from __future__ import annotations

import functools
import re
from types import ModuleType
from typing import Any

import numpy as np

from hubkit.errors import DeviceError

_INSTALL_HINT = (
    "install cupy for your CUDA version with pip install 'hubkit[cuda12]' (CUDA 12.x) or "
    "'hubkit[cuda13]' (CUDA 13.x), on a machine with an NVIDIA GPU and driver"
)


# device types other frameworks know; a string naming one is a device request hubkit must refuse clearly
FOREIGN_DEVICES = frozenset({"gpu", "mps", "xpu", "xla", "hip", "meta", "ipu", "hpu", "mtia", "vulkan", "lazy",
                             "mkldnn", "opengl", "opencl", "ideep", "fpga", "ve", "maia", "privateuseone"})


class Device:
    """Where a tensor's memory lives: ``Device("cpu")``, ``Device("cuda")``, ``Device("cuda:1")``.

    Compares equal to its string form, so ``t.device == "cpu"`` works.
    """

    __slots__ = ("type", "index")

    def __init__(self, spec: str | Device = "cpu", index: int | None = None) -> None:
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 0:  # torch.device(0) is cuda:0
            spec = f"cuda:{spec}"
        if not isinstance(spec, str):
            raise DeviceError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", spec.strip())
        if m is None:
            kind = spec.strip().split(":")[0].lower()
            hint = {"gpu": "; an NVIDIA GPU is 'cuda'", "mps": "; hubkit has no Apple Metal (mps) backend",
                    }.get(kind, "; hubkit runs on CPUs and NVIDIA GPUs only" if kind in FOREIGN_DEVICES else "")
            raise DeviceError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'{hint}")
        self.type = m.group(1)
        parsed = int(m.group(2)) if m.group(2) is not None else index
        if self.type == "cpu" and parsed not in (None, 0):
            raise DeviceError(f"device {spec!r}: the CPU has no index other than 0")
        self.index = None if self.type == "cpu" else (parsed or 0)

    def __str__(self) -> str:
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except DeviceError:
                return False
        if not isinstance(other, Device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = Device("cpu")


@functools.lru_cache(maxsize=1)
def _import_cupy() -> ModuleType:
    try:
        import cupy
    except ImportError as exc:
        raise DeviceError(f"a CUDA device was requested but cupy is not installed: {_INSTALL_HINT}") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy raises its own CUDARuntimeError when there is no driver
        raise DeviceError(
            f"a CUDA device was requested but CUDA is not usable here ({exc}); {_INSTALL_HINT}"
        ) from exc
    if count == 0:
        raise DeviceError(f"a CUDA device was requested but no GPU was found; {_INSTALL_HINT}")
    return cupy


def cupy_module() -> ModuleType:
    """cupy, imported on first use, with a clear DeviceError when it or a GPU is missing."""
    return _import_cupy()


def is_cupy_array(x: Any) -> bool:
    return type(x).__module__.startswith("cupy")


def get_array_module(x: Any) -> ModuleType:
    """``numpy`` or ``cupy``, whichever owns ``x`` (numpy for anything that is not a cupy array)."""
    return _import_cupy() if is_cupy_array(x) else np


def device_of(x: Any) -> Device:
    if is_cupy_array(x):
        return Device("cuda", x.device.id)
    return CPU


def to_device(x: Any, device: Device | str) -> Any:
    """Return ``x`` (numpy or cupy array) on ``device``; no copy when it is already there."""
    device = Device(device)
    if device.type == "cpu":
        return x.get() if is_cupy_array(x) else x
    cp = _import_cupy()
    if device.index >= cp.cuda.runtime.getDeviceCount():
        raise DeviceError(
            f"device {device} does not exist: this machine has "
            f"{cp.cuda.runtime.getDeviceCount()} GPU(s), numbered from 0"
        )
    if is_cupy_array(x) and x.device.id == device.index:
        return x
    with cp.cuda.Device(device.index):
        return cp.asarray(x)


def xp_for_device(device: Device | str | None) -> ModuleType:
    device = Device(device) if device is not None else CPU
    return np if device.type == "cpu" else _import_cupy()


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` in place, where repeated indices accumulate (numpy ``add.at`` semantics)."""
    if is_cupy_array(target):
        import cupy

        if hasattr(cupy.add, "at"):  # cupy >= 13; cupyx.scatter_add is deprecated there
            cupy.add.at(target, index, values)
        else:
            import cupyx

            cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)
