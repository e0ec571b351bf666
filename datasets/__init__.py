"""hubkit.datasets: torchvision/torchaudio/torchtext datasets with verified, mirrored, cached downloads.

    from hubkit.datasets import MNIST
    train = MNIST(train=True, download=True)     # root=None -> <hubkit data dir>/datasets
    image, label = train[0]                      # (28, 28) uint8 ndarray, int

Constructor signatures and ``__getitem__`` values are the upstream ones, with numpy images (HxW or HxWxC
uint8) instead of PIL and numpy waveforms instead of tensors. ``list_datasets()`` names what can be
downloaded, ``download(name)`` fetches a dataset's files, ``resources(name)`` lists them (for mirrors).
"""

from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubkit.errors import ArgumentError

from ._base import VisionDataset, data_dir, default_root, resolve_root
from .audio.librispeech import LIBRISPEECH
from .audio.speechcommands import SPEECHCOMMANDS
from .audio.yesno import YESNO
from .text.ag_news import AG_NEWS
from .text.imdb import IMDB
from .text.stsb import STSB
from .vision.cifar import CIFAR10, CIFAR100
from .vision.coco import CocoCaptions, CocoDetection
from .vision.folder import DatasetFolder, ImageFolder
from .vision.imagenet import ImageNet
from .vision.mnist import EMNIST, KMNIST, MNIST, QMNIST, FashionMNIST
from .vision.semeion import SEMEION
from .vision.stl10 import STL10
from .vision.svhn import SVHN
from .vision.usps import USPS

if TYPE_CHECKING:
    from hubkit.hub import Resource

__all__ = [
    "AG_NEWS",
    "CIFAR10",
    "CIFAR100",
    "EMNIST",
    "IMDB",
    "KMNIST",
    "LIBRISPEECH",
    "MNIST",
    "QMNIST",
    "SEMEION",
    "SPEECHCOMMANDS",
    "STL10",
    "STSB",
    "SVHN",
    "USPS",
    "YESNO",
    "CocoCaptions",
    "CocoDetection",
    "DatasetFolder",
    "FashionMNIST",
    "ImageFolder",
    "ImageNet",
    "VisionDataset",
    "canonical_name",
    "data_dir",
    "default_root",
    "download",
    "list_datasets",
    "resource_folder",
    "resources",
]

# Downloadable datasets: name -> the object that declares ``resources`` and ``resource_folder(root)``
# (a class, or the module of a torchtext-style function).
_DOWNLOADABLE: dict[str, str] = {
    "MNIST": "hubkit.datasets.vision.mnist:MNIST",
    "FashionMNIST": "hubkit.datasets.vision.mnist:FashionMNIST",
    "KMNIST": "hubkit.datasets.vision.mnist:KMNIST",
    "EMNIST": "hubkit.datasets.vision.mnist:EMNIST",
    "QMNIST": "hubkit.datasets.vision.mnist:QMNIST",
    "CIFAR10": "hubkit.datasets.vision.cifar:CIFAR10",
    "CIFAR100": "hubkit.datasets.vision.cifar:CIFAR100",
    "SVHN": "hubkit.datasets.vision.svhn:SVHN",
    "STL10": "hubkit.datasets.vision.stl10:STL10",
    "USPS": "hubkit.datasets.vision.usps:USPS",
    "SEMEION": "hubkit.datasets.vision.semeion:SEMEION",
    "CocoDetection": "hubkit.datasets.vision.coco:CocoDetection",
    "CocoCaptions": "hubkit.datasets.vision.coco:CocoCaptions",
    "YESNO": "hubkit.datasets.audio.yesno:YESNO",
    "SPEECHCOMMANDS": "hubkit.datasets.audio.speechcommands:SPEECHCOMMANDS",
    "LIBRISPEECH": "hubkit.datasets.audio.librispeech:LIBRISPEECH",
    "AG_NEWS": "hubkit.datasets.text.ag_news",
    "IMDB": "hubkit.datasets.text.imdb",
    "STSB": "hubkit.datasets.text.stsb:STSB",
}

# What ``download(name)`` fetches when a dataset declares more than its default configuration needs.
_DEFAULT_FILES: dict[str, tuple[str, ...]] = {
    "SPEECHCOMMANDS": ("speech_commands_v0.02.tar.gz",),
    "LIBRISPEECH": ("train-clean-100.tar.gz",),
}


def list_datasets() -> list[str]:
    """Names of the datasets hubkit can download, sorted case-insensitively."""
    return sorted(_DOWNLOADABLE, key=str.lower)


def canonical_name(name: str) -> str | None:
    """The registered spelling of a downloadable dataset name (case-insensitive), or None if unknown."""
    by_lower = {n.lower(): n for n in _DOWNLOADABLE}
    return by_lower.get(name.lower().replace("-", "_")) if isinstance(name, str) else None


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise ArgumentError(f"a dataset name must be a string, found {type(name).__name__}")
    found = canonical_name(name)
    if found is not None:
        return found
    close = difflib.get_close_matches(name, list(_DOWNLOADABLE), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ArgumentError(f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(list_datasets())}.")


def _declaring(name: str) -> Any:
    module, _, attr = _DOWNLOADABLE[_canonical(name)].partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def resources(name: str) -> list[Resource]:
    """Every file the dataset ``name`` can download (all splits and versions), as ``hub.Resource``s."""
    return list(_declaring(name).resources)


def resource_folder(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder under ``root`` where the dataset ``name`` keeps its downloaded files."""
    return Path(_declaring(name).resource_folder(resolve_root(root)))


def download(name: str, root: str | os.PathLike[str] | None = None, *, progress: bool | None = None) -> list[Path]:
    """Download (and verify) the files of dataset ``name`` into their place under ``root``; returns their paths.

    Files already there and matching their checksums are not fetched again. ``root=None`` is the default
    dataset root, so a later ``MNIST()`` (or ``MNIST(root)``) finds them without a network. ``progress``
    forces the download bars on/off (default: on when stderr is a terminal).
    """
    from ._base import RawFile, locate, resource_filename

    canonical = _canonical(name)
    wanted = _DEFAULT_FILES.get(canonical)
    files = [r for r in resources(canonical) if wanted is None or resource_filename(r) in wanted]
    folder = resource_folder(canonical, root)
    return locate(canonical, [RawFile(r, folder) for r in files], download=True, progress=progress)
