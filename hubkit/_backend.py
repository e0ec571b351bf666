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
    """``target[index] += values`` in place, where repeated indices accumulate (numpy ``add.at`` semantics).

    numpy's ``add.at`` adds in index order, so it is deterministic; cupy's uses floating-point atomics,
    whose order varies between runs, so under ``use_deterministic_algorithms(True)`` a CUDA float target
    goes through :func:`deterministic_scatter_add` instead.
    """
    if is_cupy_array(target):
        import cupy

        from hubkit import _config

        if _config._deterministic and target.dtype.kind in "fc":
            deterministic_scatter_add(target, index, values)
            return

        if hasattr(cupy.add, "at"):  # cupy >= 13; cupyx.scatter_add is deprecated there
            cupy.add.at(target, index, values)
        else:
            import cupyx

            cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


def _flat_positions(xp: ModuleType, shape: tuple[int, ...], index: Any) -> Any:
    """The flat (C-order) position in an array of ``shape`` of every element ``array[index]`` addresses."""
    ints = index if isinstance(index, tuple) else (index,)
    if len(ints) == len(shape) and all(hasattr(i, "dtype") and i.dtype.kind in "iu" for i in ints):
        # the usual case (gathered coordinates, one per dim): no position table needed
        flat = 0
        for i, n in zip(ints, shape):
            flat = flat * n + xp.where(i < 0, i + n, i).astype(np.int64)
        return flat
    return xp.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[index]


def deterministic_scatter_add(target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` with repeated positions summed in a fixed order, on numpy or cupy alike.

    The contributions are sorted by target position (a stable sort), then each run of equal positions is
    summed by a segmented inclusive scan (Hillis-Steele: step k adds the partial sum 2**k places back when
    it lies in the same run), whose pairing depends only on the index pattern, never on thread timing.
    The run totals land on distinct positions, so the final ``+=`` has no collisions.
    """
    xp = get_array_module(target)
    positions = _flat_positions(xp, target.shape, index)
    pos = positions.reshape(-1)
    if pos.size == 0:
        return
    vals = xp.broadcast_to(xp.asarray(values, dtype=target.dtype), positions.shape).reshape(-1)
    order = xp.argsort(pos, kind="stable") if xp is np else xp.argsort(pos)  # cupy's sort is always stable
    pos, acc = pos[order], vals[order]
    n = pos.size
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), pos[1:] != pos[:-1]]))
    ends = xp.concatenate([starts[1:], xp.asarray([n], dtype=starts.dtype)]) - 1
    longest = int((ends - starts).max()) + 1
    shift = 1
    while shift < longest:
        same_run = pos[shift:] == pos[:-shift]
        acc = xp.concatenate([acc[:shift], acc[shift:] + xp.where(same_run, acc[:-shift], 0)])
        shift *= 2
    flat = target.reshape(-1) if target.flags.c_contiguous else target.copy().reshape(-1)
    flat[pos[ends]] += acc[ends]
    if not target.flags.c_contiguous:
        target[...] = flat.reshape(target.shape)
