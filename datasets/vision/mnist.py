"""MNIST and its relatives: FashionMNIST, KMNIST, EMNIST, QMNIST (IDX files, torchvision's layout).

On disk (torchvision's tree, read as it is): ``root/<ClassName>/raw/`` holds the downloaded ``.gz``
files and/or their decompressed copies; hubkit adds ``root/<ClassName>/hubkit-cache/`` with the decoded
arrays as ``.npy`` (memory-mapped on later constructions).

A raw file is checked by what it holds, whatever form it takes. The downloaded ``.gz`` is checked by its
md5 (torchvision's list). A decompressed copy, or a ``.gz`` whose bytes differ (the same contents
compressed again), is checked against the sha256 of the decompressed contents where ``decompressed``
records it, and otherwise by its IDX structure: a header of the expected element type and shape
(``(N, 28, 28)`` images, ``(N,)`` labels) that agrees with the file's size. Content digests are recorded
for MNIST's ``t10k`` images and labels, computed from the upstream files after checking their md5; the
other files (MNIST's training set, and every file of FashionMNIST, KMNIST, EMNIST and QMNIST) are checked
by structure until their digests are recorded the same way.
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub import Resource
from hubkit.hub.transport.verify import Expect

from .._array_cache import CACHE_FOLDER, ArrayCache, cached_arrays
from .._dataset import ArrayDataset, check_choice
from .._files import RawFile, locate, not_found, resource_filename, unpack
from .._registry import register_dataset
from ._idx import IDX_DTYPES, content_problem, read_idx

__all__ = ["EMNIST", "KMNIST", "MNIST", "QMNIST", "FashionMNIST", "read_idx"]

_IMAGES = ((None, 28, 28), IDX_DTYPES[8])


def _layout(name: str) -> tuple[tuple[int | None, ...], np.dtype]:
    """The shape and element type an IDX file of this name holds: images, labels, or QMNIST's label rows."""
    if "images" in name:
        return _IMAGES
    return ((None, 8), IDX_DTYPES[12]) if "idx2-int" in name else ((None,), IDX_DTYPES[8])


def _read_images(path: Path) -> np.ndarray:
    return read_idx(path, shape=_IMAGES[0], dtype=_IMAGES[1])


def _read_labels(path: Path) -> np.ndarray:
    shape, dtype = _layout(path.name)
    return read_idx(path, shape=shape, dtype=dtype).astype(np.int64)


def _check_pair(name: str, images: np.ndarray, labels: np.ndarray) -> None:
    if len(images) != len(labels):
        raise DatasetError(
            f"{name}: {len(images)} images but {len(labels)} labels; one of the files belongs to another "
            "split or is corrupted. Replace both with the original files (download=True fetches them)."
        )


def _decompressed(path: Path) -> Path:
    """``raw/x-ubyte.gz`` -> ``raw/x-ubyte``: the copy torchvision's download leaves next to the archive."""
    return path.with_suffix("") if path.suffix in (".gz", ".xz") else path


@register_dataset
class MNIST(ArrayDataset):
    """MNIST handwritten digits: 60,000 train / 10,000 test grayscale 28x28 images.

    ``MNIST(root=None, train=True, transform=None, target_transform=None, download=False)`` as in
    torchvision; ``ds[i]`` is ``(image, target)`` with ``image`` a ``(28, 28)`` uint8 ndarray and
    ``target`` an int. ``data`` is ``(N, 28, 28)`` uint8 and ``targets`` ``(N,)`` int64, both memory-mapped.
    """

    # Mirrors in order of observed health: ossci's copy first, the original host second (404 since 2025).
    resources: tuple[Resource, ...] = tuple(
        Resource(
            url=f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}",
            mirrors=(f"http://yann.lecun.com/exdb/mnist/{name}",),
            md5=md5,
            size=size,
        )
        for name, md5, size in (
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
            ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28881),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1648877),
            ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4542),
        )
    )
    #: What a resource holds once decompressed (sha256 and size of the plain IDX file), by resource file name:
    #: computed from upstream files whose md5 matched ``resources``. Files not listed are checked by structure.
    decompressed: dict[str, Expect] = {
        "t10k-images-idx3-ubyte.gz": Expect.of(
            sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", size=7840016),
        "t10k-labels-idx1-ubyte.gz": Expect.of(
            sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", size=10008),
    }
    classes = [
        "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
        "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine",
    ]

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
        self.data, self.targets = self._load_data(download)

    # ------------------------------------------------------------ layout

    @classmethod
    def resource_folder(cls, root: Path) -> Path:
        """Where this dataset's downloads go: ``root/<ClassName>/raw``."""
        return Path(root) / cls.__name__ / "raw"

    @property
    def raw_folder(self) -> Path:
        return self.resource_folder(self.root)

    @property
    def processed_folder(self) -> Path:
        return self.root / type(self).__name__ / "processed"

    @property
    def cache_folder(self) -> Path:
        return self.root / type(self).__name__ / CACHE_FOLDER

    def _raw_file(self, res: Resource) -> RawFile:
        name = resource_filename(res)
        content = self.decompressed.get(name)
        shape, dtype = _layout(name)

        def check(path: Path) -> str | None:
            return content_problem(path, content, shape, dtype)

        return RawFile(res, self.raw_folder, alternates=[_decompressed(self.raw_folder / name)], check=check)

    def _by_name(self, prefix: str) -> list[Resource]:
        return [r for r in self.resources if resource_filename(r).startswith(prefix)]

    # ------------------------------------------------------------ loading

    def _load_data(self, download: bool) -> tuple[np.ndarray, np.ndarray]:
        prefix = "train" if self.train else "t10k"
        files = [self._raw_file(r) for r in self._by_name(prefix + "-")]
        name = type(self).__name__

        def build() -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
            if download:  # as torchvision's download(): every split's files, so MNIST(train=False) works next
                locate(name, [self._raw_file(r) for r in self.resources if r not in self._by_name(prefix + "-")],
                       download)
            images_path, labels_path = locate(name, files, download)
            images, labels = _read_images(images_path), _read_labels(labels_path)
            _check_pair(name, images, labels)
            return {"data": images, "targets": labels}, {}, [images_path, labels_path]

        arrays, _ = cached_arrays(ArrayCache(self.cache_folder, prefix, ("data", "targets")), build)
        return arrays["data"], arrays["targets"]


@register_dataset
class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: the MNIST format and sizes, 10 clothing classes."""

    resources = tuple(
        Resource(url=f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{name}", md5=md5, size=size)
        for name, md5, size in (
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29515),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4422102),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5148),
        )
    )
    decompressed: dict[str, Expect] = {}
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


@register_dataset
class KMNIST(MNIST):
    """Kuzushiji-MNIST: the MNIST format and sizes, 10 cursive hiragana classes."""

    resources = tuple(
        Resource(url=f"http://codh.rois.ac.jp/kmnist/dataset/kmnist/{name}", md5=md5)
        for name, md5 in (
            ("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
            ("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
            ("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
            ("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
        )
    )
    decompressed: dict[str, Expect] = {}
    classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


@register_dataset
class EMNIST(MNIST):
    """EMNIST: ``EMNIST(root=None, split=..., train=True, transform=None, target_transform=None, download=False)``.

    ``split`` is one of ``byclass, bymerge, balanced, letters, digits, mnist`` (required, as in torchvision).
    The download is NIST's ``gzip.zip``; it is extracted to ``raw/gzip/`` and the split's ``.gz`` files are
    read from there. A torchvision tree (decompressed ``raw/emnist-<split>-<train|test>-*-ubyte``) is read
    as it is. Images keep the files' orientation (transposed relative to MNIST), as torchvision does.
    """

    resources = (
        Resource(url="https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip", md5="58c8d27c78d21e728a6bc7b3cc06412e"),
    )
    decompressed: dict[str, Expect] = {}
    splits = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
    # Merged classes: letters whose upper and lower case are written alike.
    _merged_classes = {"c", "i", "j", "k", "l", "m", "o", "p", "s", "u", "v", "w", "x", "y", "z"}
    _all_classes = set(string.digits + string.ascii_letters)
    classes_split_dict = {
        "byclass": sorted(_all_classes),
        "bymerge": sorted(_all_classes - _merged_classes),
        "balanced": sorted(_all_classes - _merged_classes),
        "letters": ["N/A", *string.ascii_lowercase],
        "digits": list(string.digits),
        "mnist": list(string.digits),
    }

    def __init__(self, root: str | os.PathLike[str] | None = None, split: str | None = None, **kwargs: Any) -> None:
        self.split = check_choice(split, "split", self.splits)
        self.classes = self.classes_split_dict[self.split]
        super().__init__(root, **kwargs)

    def _file_prefix(self) -> str:
        return f"emnist-{self.split}-{'train' if self.train else 'test'}"

    def _load_data(self, download: bool) -> tuple[np.ndarray, np.ndarray]:
        names = [f"{self._file_prefix()}-images-idx3-ubyte", f"{self._file_prefix()}-labels-idx1-ubyte"]
        raw, gz = self.raw_folder, self.raw_folder / "gzip"

        def present() -> list[Path] | None:
            paths = []
            for n in names:
                p = next((c for c in (raw / n, gz / (n + ".gz")) if c.is_file()), None)
                if p is None:
                    return None
                paths.append(p)
            return paths

        def build() -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
            paths = present()
            if paths is None:
                archive = RawFile(self.resources[0], raw)
                if not archive.path.is_file() and not download:
                    raise not_found(
                        "EMNIST",
                        [(archive.path, self.resources[0])],
                        hint=f"(or the decompressed files {', '.join(names)} in {raw})",
                    )
                (zip_path,) = locate("EMNIST", [archive], download)
                unpack(zip_path, raw, "EMNIST")
                paths = present()
                if paths is None:
                    raise DatasetError(
                        f"EMNIST: {zip_path} was extracted but does not contain gzip/{names[0]}.gz and "
                        f"gzip/{names[1]}.gz; the archive is not NIST's gzip.zip. Delete it and download again."
                    )
            images, labels = _read_images(paths[0]), _read_labels(paths[1])
            _check_pair("EMNIST", images, labels)
            return {"data": images, "targets": labels}, {}, paths

        arrays, _ = cached_arrays(ArrayCache(self.cache_folder, self._file_prefix(), ("data", "targets")), build)
        return arrays["data"], arrays["targets"]

    def extra_repr(self) -> str:
        return f"Split: {self.split}\n{super().extra_repr()}"


_QMNIST_BASE = "https://raw.githubusercontent.com/facebookresearch/qmnist/master/"


@register_dataset
class QMNIST(MNIST):
    """QMNIST: ``QMNIST(root=None, what=None, compat=True, train=True, **kwargs)`` as in torchvision.

    ``what`` is ``train``, ``test`` (60k), ``test10k`` (its first 10,000 rows, MNIST's test set),
    ``test50k`` (the other 50,000) or ``nist`` (all NIST digits); default from ``train``. Targets are
    the 8-column QMNIST label rows ``(N, 8)`` int64; ``ds[i]`` gives ``int(row[0])`` when ``compat`` is
    True, else the whole row as an ``(8,)`` int64 ndarray.
    """

    subsets = {"train": "train", "test": "test", "test10k": "test", "test50k": "test", "nist": "nist"}
    resources = tuple(
        Resource(url=_QMNIST_BASE + name, md5=md5)
        for name, md5 in (
            ("qmnist-train-images-idx3-ubyte.gz", "ed72d4157d28c017586c42bc6afe6370"),
            ("qmnist-train-labels-idx2-int.gz", "0058f8dd561b90ffdd0f734c6a30e5e4"),
            ("qmnist-test-images-idx3-ubyte.gz", "1394631089c404de565df7b7aeaf9412"),
            ("qmnist-test-labels-idx2-int.gz", "5b5b05890a5e13444e108efe57b788aa"),
            ("xnist-images-idx3-ubyte.xz", "7f124b3b8ab81486c9d8c2749c17f834"),
            ("xnist-labels-idx2-int.xz", "5ed0e788978e45d4a8bd4b7caec3d79d"),
        )
    )
    decompressed: dict[str, Expect] = {}
    classes = MNIST.classes

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        what: str | None = None,
        compat: bool = True,
        train: bool = True,
        **kwargs: Any,
    ) -> None:
        if what is None:
            what = "train" if train else "test"
        self.what = check_choice(what, "what", tuple(self.subsets))
        self.compat = compat
        super().__init__(root, train, **kwargs)

    def _load_data(self, download: bool) -> tuple[np.ndarray, np.ndarray]:
        group = self.subsets[self.what]
        prefix = "xnist-" if group == "nist" else f"qmnist-{group}-"
        files = [self._raw_file(r) for r in self._by_name(prefix)]

        def build() -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
            images_path, labels_path = locate("QMNIST", files, download)
            images, labels = _read_images(images_path), _read_labels(labels_path)
            _check_pair("QMNIST", images, labels)
            return {"data": images, "targets": labels}, {}, [images_path, labels_path]

        arrays, _ = cached_arrays(ArrayCache(self.cache_folder, group, ("data", "targets")), build)
        data, targets = arrays["data"], arrays["targets"]
        if self.what == "test10k":
            data, targets = data[:10000], targets[:10000]
        elif self.what == "test50k":
            data, targets = data[10000:], targets[10000:]
        return data, targets

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(image (28, 28) uint8, target)``: ``int(row[0])`` if ``compat`` else the ``(8,)`` int64 row."""
        row = self.targets[index]
        target = int(row[0]) if self.compat else np.array(row)
        return self._apply(np.array(self.data[index]), target)

    def extra_repr(self) -> str:
        return f"Split: {self.what}"
