"""``hubkit.cuda``: PyTorch's ``torch.cuda`` queries and controls, on cupy.

Nothing here imports cupy until a function needs it, and every query answers sensibly on a
machine without cupy or a GPU (``is_available()`` is False, ``device_count()`` is 0); calls that
need a GPU raise ``DeviceError`` with the install hint.

hubkit draws CUDA random numbers from seeds taken from the global generator, so
``hubkit.manual_seed(s)`` alone makes GPU runs reproducible; ``manual_seed``/``manual_seed_all``
here accept the call torch code makes and have nothing separate to seed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hubkit._backend import Device, cupy_module
from hubkit.errors import DeviceError

__all__ = [
    "is_available", "device_count", "current_device", "set_device", "device", "synchronize", "manual_seed",
    "manual_seed_all", "seed", "seed_all", "get_device_name", "get_device_capability", "get_device_properties",
    "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved", "empty_cache",
    "mem_get_info", "reset_peak_memory_stats", "is_bf16_supported",
]

_peak: dict[int, int] = {}


def _cupy() -> ModuleType:
    return cupy_module()


def is_available() -> bool:
    """True when cupy is installed and at least one CUDA GPU is visible."""
    try:
        _cupy()
    except DeviceError:
        return False
    return True


def device_count() -> int:
    return _cupy().cuda.runtime.getDeviceCount() if is_available() else 0


def _index(device: Any) -> int:
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    d = Device(device)
    if d.type != "cuda":
        raise DeviceError(f"expected a CUDA device, got {device!r}")
    return d.index


def current_device() -> int:
    """The index of the GPU new CUDA tensors go to by default."""
    return _cupy().cuda.runtime.getDevice()


def set_device(device: Any) -> None:
    """Make ``device`` (an index, ``"cuda:N"`` or a ``hubkit.device``) the current GPU."""
    index = _index(device)
    count = device_count()
    if not 0 <= index < count:
        raise DeviceError(f"cuda.set_device({device!r}): this machine has {count} GPU(s), numbered from 0")
    _cupy().cuda.runtime.setDevice(index)


class device:  # noqa: N801  (PyTorch's name)
    """``with hubkit.cuda.device(1):`` runs a block with GPU 1 as the current device."""

    def __init__(self, device: Any) -> None:
        self._index = _index(device)

    def __enter__(self) -> None:
        self._prev = current_device()
        set_device(self._index)

    def __exit__(self, *exc: object) -> None:
        set_device(self._prev)


def synchronize(device: Any = None) -> None:
    """Wait for every kernel queued on ``device`` (default: the current GPU) to finish."""
    cp = _cupy()
    with cp.cuda.Device(_index(device)):
        cp.cuda.runtime.deviceSynchronize()


def manual_seed(seed: int) -> None:
    """Accepted for torch code; see the module docstring (``hubkit.manual_seed`` seeds GPU sampling too)."""
    int(seed)


def manual_seed_all(seed: int) -> None:
    int(seed)


def seed() -> None:
    """Accepted for torch code: GPU sampling follows the global generator."""


def seed_all() -> None:
    """Accepted for torch code: GPU sampling follows the global generator."""


def get_device_properties(device: Any = None) -> Any:
    """cupy's property dict for the GPU (``name``, ``totalGlobalMem``, ``major``, ``minor``, ...)."""
    return _cupy().cuda.runtime.getDeviceProperties(_index(device))


def get_device_name(device: Any = None) -> str:
    name = get_device_properties(device)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def get_device_capability(device: Any = None) -> tuple[int, int]:
    props = get_device_properties(device)
    return int(props["major"]), int(props["minor"])


def is_bf16_supported() -> bool:
    return False  # hubkit has no bfloat16 tensors


def _pool_used(index: int) -> int:
    cp = _cupy()
    with cp.cuda.Device(index):
        used = cp.get_default_memory_pool().used_bytes()
    _peak[index] = max(_peak.get(index, 0), used)
    return used


def memory_allocated(device: Any = None) -> int:
    """Bytes of GPU memory held by live arrays on ``device`` (cupy's memory pool, used blocks)."""
    if not is_available():
        return 0
    return _pool_used(_index(device))


def max_memory_allocated(device: Any = None) -> int:
    """The largest ``memory_allocated`` seen by a query since start or ``reset_peak_memory_stats``
    (cupy keeps no peak counter of its own, so the peak is sampled when one of these is called)."""
    if not is_available():
        return 0
    index = _index(device)
    _pool_used(index)
    return _peak.get(index, 0)


def reset_peak_memory_stats(device: Any = None) -> None:
    if is_available():
        index = _index(device)
        _peak[index] = 0
        _pool_used(index)


def memory_reserved(device: Any = None) -> int:
    """Bytes the memory pool holds from the driver on ``device`` (used plus cached blocks)."""
    if not is_available():
        return 0
    cp = _cupy()
    with cp.cuda.Device(_index(device)):
        return cp.get_default_memory_pool().total_bytes()


max_memory_reserved = memory_reserved


def empty_cache() -> None:
    """Return the memory pool's unused blocks to the driver."""
    if is_available():
        _cupy().get_default_memory_pool().free_all_blocks()


def mem_get_info(device: Any = None) -> tuple[int, int]:
    """(free, total) bytes on the GPU, as the driver reports them."""
    cp = _cupy()
    with cp.cuda.Device(_index(device)):
        return cp.cuda.runtime.memGetInfo()
