"""``hubkit.save`` and the file side of ``hubkit.load``: torch.save / torch.load for hubkit objects.

    hubkit.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, "ckpt.pt")
    ckpt = hubkit.load("ckpt.pt", map_location="cpu")     # same structure, hubkit Tensors
    hubkit.save(model, "net.safetensors")                  # a flat state dict: safetensors or npz
    state = hubkit.load_state("net.safetensors")           # {name: Tensor}

Files in torch's format are what ``torch.save`` writes and ``torch.load(weights_only=True)`` reads;
reading detects the format from the file's bytes (see :mod:`hubkit.hub.checkpoint.formats`). This module turns
engine objects (Tensors on any device, Parameters) into the checkpoint layer's :class:`TensorData`
and back; the bytes are handled there.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from hubkit.errors import ArgumentTypeError, CheckpointError, DeviceError
from hubkit.hub.checkpoint.formats import (
    SaveFormat,
    TensorData,
    load_checkpoint,
    load_object,
    save_checkpoint,
    save_object,
)

__all__ = ["load_file", "load_state", "save"]

_FLAT_SUFFIXES: dict[str, SaveFormat] = {".safetensors": "safetensors", ".npz": "npz"}


def save(obj: Any, f: str | os.PathLike | BinaryIO, *, format: SaveFormat | None = None) -> None:
    """Write ``obj`` to ``f`` as ``torch.save`` does, in a file ``torch.load(f, weights_only=True)`` reads.

    Args:
        obj: what training code passes to ``torch.save``: a model or optimizer state dict, or nested
            dicts / OrderedDicts / lists / tuples of Tensors, ndarrays, ints, floats, bools, None,
            strings and dtypes. Tensors keep their dtype, shape, strides, ``requires_grad`` and device
            (``"cuda:0"`` is recorded as torch records it; the bytes are copied to the host); a
            Parameter stays a Parameter. Tensors that share memory (tied weights, views) share one
            storage in the file, and one Tensor reached twice is one tensor after loading. ndarrays are
            written as tensors and numpy scalars as Python numbers, since ``weights_only`` readers load
            no numpy objects. An object with ``.state_dict()`` (a Module) given as ``obj`` itself is
            saved as its ``state_dict()``: hubkit cannot pickle a module's code as torch does, so
            rebuild the model and ``load_state_dict`` it after loading.
        f: a path (str or ``os.PathLike``), written atomically (a temp file renamed into place, so
            the name never holds half a file), or a binary file object, written from its position.
        format: ``"torch"`` (zip, torch's format), ``"safetensors"`` or ``"npz"``. By default the
            suffix decides: ``.safetensors`` and ``.npz`` name those formats; every other suffix, no
            suffix and file objects mean torch's format, as with ``torch.save``. safetensors and npz
            hold only a flat ``{name: tensor}`` mapping.

    Raises:
        CheckpointError: ``obj`` holds something torch's ``weights_only`` reader cannot load (the
            message names where it sits), a dtype torch lacks, or a nested object given to a flat
            format. Nothing is written then.
    """
    is_path = isinstance(f, str | os.PathLike)
    if not is_path and (not callable(getattr(f, "write", None)) or isinstance(f, io.TextIOBase)):
        found = "a text-mode file" if isinstance(f, io.TextIOBase) else f"a {type(f).__name__}"
        raise ArgumentTypeError(f"hubkit.save writes to a path (str or os.PathLike) or a binary file object "
                                f"(opened with 'wb'); got {found}")
    if format is None:
        format = _FLAT_SUFFIXES.get(Path(f).suffix.lower(), "torch") if is_path else "torch"
    if format not in ("torch", "safetensors", "npz"):
        raise CheckpointError(f"format={format!r}: expected 'torch', 'safetensors' or 'npz'")
    if hasattr(obj, "state_dict") and not isinstance(obj, Mapping):
        obj = obj.state_dict()
    saved = _ToSaved(flat=format != "torch").convert(obj)
    if format == "torch":
        save_object(saved, f)
        return
    save_checkpoint(_flat_arrays(saved, format), f, format=format)


def load_file(
    f: str | os.PathLike | BinaryIO,
    *,
    map_location: Any = None,
    mmap: bool | None = None,
) -> Any:
    """Read a checkpoint file as ``torch.load(f, map_location, weights_only=True, mmap=mmap)`` does.

    Returns the object the file holds (for torch files, the structure ``torch.save`` was given:
    dict, OrderedDict, list, tuple, str, int, float, bool, None) with a hubkit Tensor where each
    tensor was (a Parameter where torch saved one); a safetensors or npz file gives ``{name: Tensor}``.
    Tensors that shared a storage share memory, also after a move to a GPU.

    ``map_location`` places the tensors, as torch's does: ``None`` puts each where it was saved
    (``"cuda:0"`` needs a GPU), a device (``"cpu"``, ``"cuda:1"``, ``hubkit.device("cuda")``) puts
    all there, a dict maps saved locations to new ones (``{"cuda:1": "cuda:0"}``), and a callable
    ``fn(storage, location)`` gets each storage as a flat uint8 Tensor with its saved location and
    returns it moved (``lambda s, loc: s.cuda(0)``) or ``None`` for the default. ``mmap=True`` maps
    a path copy-on-write instead of reading it.
    """
    placer = _Placer(map_location)
    return load_object(f, mmap=bool(mmap), tensor=placer)


def load_state(
    path: str | os.PathLike,
    *,
    mmap: bool = False,
    key: str | Sequence[str] | None = None,
    bfloat16: Literal["float32", "uint16"] = "float32",
) -> dict[str, Any]:
    """Read a state dict ``{name: Tensor}`` from any checkpoint :func:`load_checkpoint` reads.

    The tensors wrap the loaded arrays without a copy; ``mmap=True`` maps the file instead of reading it
    (see :func:`load_checkpoint` for when that is safe). Where the tensor module is not available they
    are returned as ndarrays. ``key`` unwraps a nested
    container such as ``{"epoch": 3, "model": {...}}``.
    """
    arrays = load_checkpoint(path, mmap=mmap, key=key, bfloat16=bfloat16)
    try:
        from hubkit.tensor import from_numpy
    except ImportError:
        return arrays
    return {name: from_numpy(array) for name, array in arrays.items()}


# ---------------------------------------------------------------- saving: engine objects -> TensorData


class _ToSaved:
    """Replaces Tensors and arrays by :class:`TensorData`, one per object, keeping container identity.

    ``flat`` (safetensors, npz) turns numpy scalars into 0-d arrays, since those formats hold only
    arrays; torch's format keeps them as Python numbers.
    """

    def __init__(self, *, flat: bool) -> None:
        self.flat = flat
        self.done: dict[int, Any] = {}
        self.host_roots: dict[int, np.ndarray | None] = {}  # one host copy per device buffer
        self.host_copies: dict[int, np.ndarray] = {}  # device arrays without a contiguous buffer to view

    def convert(self, value: Any) -> Any:
        if isinstance(value, str | int | float | type(None) | np.dtype):
            return value
        if isinstance(value, np.generic):
            return TensorData(np.asarray(value)) if self.flat else value.item()
        key = id(value)
        if key in self.done:
            return self.done[key]
        out: Any
        if isinstance(value, Mapping):
            out = OrderedDict() if isinstance(value, OrderedDict) else {}
            self.done[key] = out
            for k, v in value.items():
                out[k] = self.convert(v)
            return out
        if isinstance(value, list):
            out = []
            self.done[key] = out
            out.extend(self.convert(v) for v in value)
            return out
        if isinstance(value, tuple):
            out = tuple(self.convert(v) for v in value)
        else:
            out = self._tensor(value)
        self.done[key] = out
        return out

    def _tensor(self, value: Any) -> Any:
        """A TensorData for anything array-like; other objects pass through for the format's check."""
        from hubkit.tensor import Tensor

        if isinstance(value, Tensor):
            from hubkit.nn.parameter import Parameter

            array, location = self._host(value.array)
            return TensorData(array, location, bool(value.requires_grad), isinstance(value, Parameter))
        if isinstance(value, np.ndarray) or _is_device_array(value):
            return TensorData(*self._host(value))
        data = getattr(value, "array", None)  # a Tensor-like wrapper around a numpy/cupy array
        if isinstance(data, np.ndarray) or _is_device_array(data):
            return TensorData(*self._host(data))
        if callable(getattr(value, "numpy", None)) and hasattr(value, "shape"):
            return TensorData(np.asarray(value.numpy()))
        return value

    def _host(self, array: Any) -> tuple[np.ndarray, str]:
        """``(host array, torch location)``; views of one device buffer stay views of one host copy."""
        if isinstance(array, np.ndarray):
            return array, "cpu"
        device = getattr(array, "device", None)
        location = f"cuda:{getattr(device, 'id', 0)}"
        root = array
        while _is_device_array(getattr(root, "base", None)):
            root = root.base
        if id(root) not in self.host_roots:
            contiguous = getattr(getattr(root, "flags", None), "c_contiguous", False)
            self.host_roots[id(root)] = root.get() if contiguous and hasattr(root, "data") else None
        host_root = self.host_roots[id(root)]
        if host_root is None:  # no buffer to share: this array's own copy, made once per array
            if id(array) not in self.host_copies:
                self.host_copies[id(array)] = array.get()
            return self.host_copies[id(array)], location
        offset = array.data.ptr - root.data.ptr
        view = np.ndarray(array.shape, array.dtype, buffer=host_root, offset=offset, strides=array.strides)
        return view, location


def _is_device_array(value: Any) -> bool:
    return hasattr(value, "__cuda_array_interface__") and callable(getattr(value, "get", None))


def _flat_arrays(saved: Any, format: str) -> dict[str, np.ndarray]:
    """``{name: array}`` from a converted object, or a CheckpointError saying why the format cannot hold it."""
    use_torch = "save nested objects (optimizer state, training checkpoints) to a .pt/.pth path, in torch's format"
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"a {format} file holds a flat {{name: tensor}} mapping, and the object to save is a "
                              f"{type(saved).__name__}; {use_torch}")
    arrays = {}
    for name, value in saved.items():
        if isinstance(value, bool | int | float):
            value = TensorData(np.asarray(value))
        if not isinstance(value, TensorData):
            what = "a nested " + type(value).__name__ if isinstance(value, dict | list | tuple) else (
                f"a {type(value).__name__}")
            raise CheckpointError(f"cannot save {name!r} as {format}: a {format} file holds a flat "
                                  f"{{name: tensor}} mapping, and {name!r} is {what}; {use_torch}")
        arrays[name] = value.array
    return arrays


# ---------------------------------------------------------------- loading: TensorData -> Tensors on devices


class _Placer:
    """Turns each loaded :class:`TensorData` into a Tensor where ``map_location`` says (torch's rules)."""

    def __init__(self, map_location: Any) -> None:
        from hubkit._backend import Device

        if isinstance(map_location, str | Device):
            map_location = Device(map_location)  # an unknown name fails here, once, naming the valid ones
        elif isinstance(map_location, Mapping):
            for saved, target in map_location.items():
                if not (isinstance(saved, str) and isinstance(target, str | Device)):
                    raise ArgumentTypeError(f"map_location dict entries map a saved location string to a device, "
                                            f"like {{'cuda:1': 'cuda:0'}}; found {saved!r}: {target!r}")
        elif map_location is not None and not callable(map_location):
            raise ArgumentTypeError(f"map_location must be None, a device ('cpu', 'cuda:0', hubkit.device(...)), a "
                                    f"dict or a callable; got {type(map_location).__name__}")
        self.map_location = map_location
        self.moved: dict[tuple[int, str], Any] = {}  # (id of a host storage, device) -> that storage there

    def __call__(self, data: TensorData) -> Any:
        from hubkit.tensor import Tensor

        device, moved_storage = self._target(data)
        array = data.array if device.type == "cpu" else self._on_device(data, device, moved_storage)
        if data.parameter:
            from hubkit.nn.parameter import Parameter

            return Parameter(Tensor._make(array), requires_grad=data.requires_grad)
        tensor = Tensor._make(array)
        if data.requires_grad:
            if array.dtype.kind not in "fc":
                raise CheckpointError(f"a {array.dtype} tensor in the file is marked requires_grad, which only "
                                      "floating-point tensors can be; the file is corrupted")
            tensor.requires_grad_(True)
        return tensor

    def _target(self, data: TensorData) -> tuple[Any, Any]:
        """``(Device, the storage already moved there by a map_location callable, or None)``."""
        from hubkit._backend import Device
        from hubkit.tensor import Tensor

        where = self.map_location
        moved = None
        if where is None:
            target = data.location
        elif isinstance(where, Device):
            return where, None
        elif isinstance(where, Mapping):
            target = where.get(data.location, data.location)
        else:
            storage = data.storage if data.storage is not None else data.array
            key = (id(storage), "callable")
            if key not in self.moved:
                flat = storage if storage.dtype == np.uint8 and storage.ndim == 1 else None
                result = where(Tensor._make(flat if flat is not None else np.ascontiguousarray(storage).reshape(-1)),
                               data.location)
                if result is not None and not isinstance(result, Tensor):
                    raise ArgumentTypeError(f"map_location(storage, location) must return the storage (a Tensor, "
                                            f"moved with .cuda()/.cpu()/.to()) or None; it returned a "
                                            f"{type(result).__name__}")
                self.moved[key] = result
            result = self.moved[key]
            if result is None:
                target = data.location
            else:
                target = result.device
                array = result.array
                if data.storage is not None and array.nbytes == data.storage.nbytes and array.flags.c_contiguous:
                    moved = array
        try:
            return Device(target), moved
        except DeviceError as e:
            raise DeviceError(f"the checkpoint's tensors were saved on {data.location!r}, which hubkit cannot "
                              f"place them on ({e}); pass map_location='cpu' (or 'cuda')") from e

    def _on_device(self, data: TensorData, device: Any, moved_storage: Any) -> Any:
        """The tensor on a GPU: a view of its storage copied there once, so shared storages stay shared."""
        from hubkit._backend import cupy_module, to_device

        try:
            if data.storage is None or data.array.size == 0:
                return to_device(data.array, device)
            key = (id(data.storage), str(device))
            root = self.moved.get(key)
            if root is None:
                root = moved_storage if moved_storage is not None and moved_storage.device.id == device.index else (
                    to_device(data.storage, device))
                self.moved[key] = root
        except DeviceError as e:
            if self.map_location is None:
                raise DeviceError(f"the checkpoint's tensors were saved on {data.location!r} ({e}); on a machine "
                                  "without that device pass map_location='cpu'") from e
            raise
        cp = cupy_module()
        offset = data.array.__array_interface__["data"][0] - data.storage.__array_interface__["data"][0]
        with cp.cuda.Device(device.index):
            return cp.ndarray(data.array.shape, data.array.dtype, memptr=root.data + offset,
                              strides=data.array.strides)
