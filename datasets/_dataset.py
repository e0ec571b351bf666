"""What every dataset class is built from: ``VisionDataset`` (torchvision's base), ``ArrayDataset`` (a dataset
held in arrays), and the argument checks their constructors share.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from hubkit.data import Dataset
from hubkit.errors import ArgumentError, MissingDependencyError

from ._roots import resolve_root

__all__ = ["ArrayDataset", "StandardTransform", "VisionDataset", "check_choice", "require"]


def require(module: str, purpose: str, extra: str) -> Any:
    """Import an optional dependency or raise :class:`MissingDependencyError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package {module.split('.')[0]!r}, which is not installed. "
            f"Install it with `pip install hubkit[{extra}]` (or `pip install {module.split('.')[0]}`)."
        ) from exc


def check_choice(value: Any, arg: str, valid: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``valid``, else raise ArgumentError naming the valid values."""
    valid = tuple(valid)
    if value not in valid:
        raise ArgumentError(
            f"Unknown value {value!r} for argument {arg}. Valid values are {', '.join(map(repr, valid))}."
        )
    return value


def _indent_repr(obj: Any, head: str) -> list[str]:
    lines = repr(obj).splitlines()
    return [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]


class StandardTransform:
    """Applies ``transform`` to the input and ``target_transform`` to the target (torchvision's helper)."""

    def __init__(self, transform: Callable | None = None, target_transform: Callable | None = None) -> None:
        self.transform = transform
        self.target_transform = target_transform

    def __call__(self, input: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            input = self.transform(input)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return input, target

    def __repr__(self) -> str:
        body = [type(self).__name__]
        if self.transform is not None:
            body += _indent_repr(self.transform, "Transform: ")
        if self.target_transform is not None:
            body += _indent_repr(self.target_transform, "Target transform: ")
        return "\n".join(body)


class VisionDataset(Dataset):
    """Base of the map-style datasets: ``root``, ``transform``/``target_transform`` or joint ``transforms``.

    A ``hubkit.data.Dataset``, so a ``DataLoader`` takes it and ``a + b`` concatenates. Subclasses implement
    ``__getitem__`` and ``__len__`` and may override ``extra_repr``.
    """

    _repr_indent = 4

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        transforms: Callable | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        self.root = resolve_root(root)
        has_separate = transform is not None or target_transform is not None
        if transforms is not None and has_separate:
            raise ArgumentError(
                "Only transforms or transform/target_transform can be passed as argument, found both"
            )
        self.transform = transform
        self.target_transform = target_transform
        if has_separate:
            transforms = StandardTransform(transform, target_transform)
        self.transforms = transforms

    def _apply(self, sample: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __getitem__(self, index: int) -> Any:  # pragma: no cover - every dataset overrides it
        raise TypeError(f"{type(self).__name__} does not implement __getitem__")

    def __len__(self) -> int:  # pragma: no cover - every dataset overrides it
        raise TypeError(f"{type(self).__name__} does not implement __len__")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        body = [f"Number of datapoints: {len(self)}", f"Root location: {self.root}"]
        body += self.extra_repr().splitlines()
        if self.transforms is not None:
            body += repr(self.transforms).splitlines()
        return "\n".join(["Dataset " + type(self).__name__] + [" " * self._repr_indent + b for b in body])


class ArrayDataset(VisionDataset):
    """A dataset held in arrays: ``data`` ``(N, ...)`` images and one integer target per image.

    ``ds[i]`` is ``(image, int target)`` after ``transform``/``target_transform``; the image is a copy of
    ``data[i]`` (:meth:`_image`), so callers may write to it while ``data`` stays memory-mapped. The
    targets are ``targets`` or, where torchvision names them so, ``labels`` (``_targets_attr``).
    """

    classes: list[str]
    _targets_attr = "targets"

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def _image(self, index: int) -> np.ndarray:
        return np.array(self.data[index])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(image ndarray, target int)``, after ``transform``/``target_transform``."""
        return self._apply(self._image(index), int(getattr(self, self._targets_attr)[index]))

    def __len__(self) -> int:
        return len(self.data)

    def extra_repr(self) -> str:
        train = getattr(self, "train", None)
        return "" if train is None else f"Split: {'Train' if train is True else 'Test'}"
