"""CIFAR10 and CIFAR100 (the "python version" pickles, torchvision's layout).

On disk: ``root/cifar-10-python.tar.gz`` extracts to ``root/cifar-10-batches-py/`` (``data_batch_1..5``,
``test_batch``, ``batches.meta``); CIFAR100 to ``root/cifar-100-python/`` (``train``, ``test``, ``meta``).
Every extracted file is checked against upstream's md5 once (remembered by size and mtime), the decoded
``(N, 32, 32, 3)`` arrays are cached under ``hubkit-cache/``.
"""

from __future__ import annotations

import codecs
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub import Resource

from .._array_cache import CACHE_FOLDER, ArrayCache, cached_arrays
from .._dataset import ArrayDataset
from .._files import RawFile, archive_members
from .._registry import register_dataset

__all__ = ["CIFAR10", "CIFAR100"]

_np_core = getattr(np, "_core", None) or np.core
# The only globals a CIFAR pickle needs: numpy's array reconstruction. Anything else is refused, so a
# tampered file cannot run code on load.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _np_core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _np_core.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol 2
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"global {module}.{name} is not allowed in a CIFAR pickle") from None


def load_pickle(path: Path) -> dict[str, Any]:
    """Load one CIFAR batch/meta pickle (Python 2 pickles, latin1 strings) without executing code."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except _ForbiddenGlobal as exc:
        raise DatasetError(f"{path}: refusing to load it: {exc}. It is not an original CIFAR file.") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(
            f"{path} is not a readable CIFAR pickle ({exc}); it is truncated or corrupted. Delete it and pass "
            "download=True to extract it again."
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a dict in the pickle, found {type(obj).__name__}")
    return obj


@register_dataset
class CIFAR10(ArrayDataset):
    """CIFAR-10: 50,000 train / 10,000 test 32x32 RGB images in 10 classes.

    ``CIFAR10(root=None, train=True, transform=None, target_transform=None, download=False)``;
    ``ds[i]`` is ``(image (32, 32, 3) uint8 ndarray, target int)``; ``data`` is ``(N, 32, 32, 3)`` uint8
    (memory-mapped), ``targets`` a list of ints, ``classes`` from the meta file.
    """

    base_folder = "cifar-10-batches-py"
    resources: tuple[Resource, ...] = (
        Resource(url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                 md5="c58f30108f718f92721af3b95e74349a", size=170498071),
    )
    train_list = [
        ["data_batch_1", "c99cafc152244af753f735de768cd75f"],
        ["data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"],
        ["data_batch_3", "54ebc095f3ab1f0389bbae665268c751"],
        ["data_batch_4", "634d18415352ddfa80567beed471001a"],
        ["data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"],
    ]
    test_list = [["test_batch", "40351d587109b95175f43aff81a1287e"]]
    meta = {"filename": "batches.meta", "key": "label_names", "md5": "5ff9c542aee3614f3951f8cda6e48888"}
    _labels_key = "labels"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        cache = ArrayCache(self.cache_folder, "train" if train else "test", ("data", "targets"), ("classes",))
        arrays, meta = cached_arrays(cache, lambda: self._decode(download))
        self.data: np.ndarray = arrays["data"]
        self.targets: list[int] = arrays["targets"].tolist()
        self.classes: list[str] = list(meta["classes"])

    @property
    def cache_folder(self) -> Path:
        return self.root / self.base_folder / CACHE_FOLDER

    def _decode(self, download: bool) -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
        folder = self.root / self.base_folder
        split = self.train_list if self.train else self.test_list
        members = [(folder / name, md5) for name, md5 in [*split, [self.meta["filename"], self.meta["md5"]]]]
        archive = RawFile(self.resources[0], self.root)  # it goes (and is extracted) in root, as in torchvision
        paths = archive_members(type(self).__name__, archive, self.root, members, download)
        chunks, targets = [], []
        for path in paths[:-1]:
            entry = load_pickle(path)
            try:
                data = np.asarray(entry["data"], dtype=np.uint8)
                labels = entry[self._labels_key]
            except KeyError as exc:
                raise DatasetError(f"{path}: the batch has no {exc} entry; it is not a CIFAR batch file") from exc
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
                raise DatasetError(
                    f"{path}: expected data of shape (N, 3072) and N labels, found {data.shape} and "
                    f"{len(labels)} labels"
                )
            chunks.append(data)
            targets.extend(labels)
        images = np.vstack(chunks).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # -> HWC
        classes = load_pickle(paths[-1]).get(self.meta["key"])
        if not isinstance(classes, list):
            raise DatasetError(f"{paths[-1]}: no {self.meta['key']!r} list in the meta file")
        arrays = {"data": images, "targets": np.asarray(targets, dtype=np.int64)}
        return arrays, {"classes": [str(c) for c in classes]}, paths


@register_dataset
class CIFAR100(CIFAR10):
    """CIFAR-100: the CIFAR-10 format with 100 fine classes (``fine_labels``, ``fine_label_names``)."""

    base_folder = "cifar-100-python"
    resources = (
        Resource(url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 md5="eb9058c3a382ffc7106e4002c42a8d85", size=169001437),
    )
    train_list = [["train", "16019d7e3df5f24257cddd939b257f8d"]]
    test_list = [["test", "f0ef6b0ae62326f3e7ffdfab6717acfc"]]
    meta = {"filename": "meta", "key": "fine_label_names", "md5": "7973b15100ade9c7d40fb424638fde48"}
    _labels_key = "fine_labels"
