"""``hubkit.accelerator``: torch.accelerator's device-agnostic queries (CUDA is hubkit's one accelerator)."""

from __future__ import annotations

from typing import Any

from hubkit import cuda
from hubkit._backend import Device


def is_available() -> bool:
    return cuda.is_available()


def device_count() -> int:
    return cuda.device_count()


def current_accelerator(check_available: bool = False) -> Device | None:
    """``hubkit.device("cuda")`` when a GPU is usable, else None (torch returns None when there is none)."""
    return Device("cuda") if cuda.is_available() else None


def current_device_index() -> int:
    return cuda.current_device()


def set_device_index(device: Any) -> None:
    cuda.set_device(device)


def synchronize(device: Any = None) -> None:
    cuda.synchronize(device)
