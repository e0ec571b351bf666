"""hubkit.datasets: torchvision/torchaudio/torchtext datasets with verified, mirrored, cached downloads.

    from hubkit.datasets import MNIST
    train = MNIST(train=True, download=True)     # root=None -> <hubkit data dir>/datasets
    image, label = train[0]                      # (28, 28) uint8 ndarray, int

Constructor signatures and ``__getitem__`` values are the upstream ones, with numpy images (HxW or HxWxC
uint8) instead of PIL and numpy waveforms instead of tensors. ``list_datasets()`` names what can be
downloaded, ``download(name)`` fetches a dataset's files, ``resources(name)`` lists them (for mirrors).

Layout: ``_roots`` (where data lives), ``_files`` (raw files: found, fetched and checked through the hub,
archives unpacked with ``hub.extract``), ``_array_cache`` (decoded arrays as memory-mapped ``.npy``),
``_dataset`` (``VisionDataset``, ``ArrayDataset``), ``_registry`` (``@register_dataset`` and the functions
above); each dataset lives in ``vision/``, ``audio/`` or ``text/`` and registers itself where it is defined.
"""

from __future__ import annotations

from ._dataset import ArrayDataset, VisionDataset
from ._registry import canonical_name, download, list_datasets, register_dataset, resource_folder, resources
from ._roots import data_dir, default_root, resolve_root
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
    "ArrayDataset",
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
    "register_dataset",
    "resolve_root",
    "resource_folder",
    "resources",
]
