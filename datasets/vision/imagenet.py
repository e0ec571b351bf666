"""ImageNet 2012 classification (ILSVRC2012), torchvision's ``ImageNet`` over archives the user provides.

The images cannot be downloaded automatically (ImageNet's terms ask each user to register). Put
``ILSVRC2012_devkit_t12.tar.gz`` and ``ILSVRC2012_img_val.tar`` (and/or ``ILSVRC2012_img_train.tar``)
in ``root``; the first construction verifies them by md5, reads the devkit's class list and
validation labels (``data/meta.mat``, needs scipy) into ``root/meta.bin`` and sorts the images into
``root/<split>/<wnid>/``. That is torchvision's layout, file names included, so a root prepared by
torchvision is used as it is (and torchvision reads one prepared here: ``meta.bin`` is written in
PyTorch's format).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubkit.errors import DatasetError, DatasetNotFoundError
from hubkit.hub.transport.cache import file_lock
from hubkit.hub.transport.verify import Expect

from .._dataset import check_choice, require
from .._files import check_file, unpack
from .._roots import resolve_root
from .folder import ImageFolder, default_loader

ARCHIVES = {
    "train": ("ILSVRC2012_img_train.tar", "1d675b47d978889d74fa0da5fadfb00e"),
    "val": ("ILSVRC2012_img_val.tar", "29b22e2961454d5413ddabcf34fc5622"),
    "devkit": ("ILSVRC2012_devkit_t12.tar.gz", "fa75699e90414af021442c21a62c3abf"),
}
META_FILE = "meta.bin"


def _archive(root: Path, kind: str) -> Path:
    name, md5 = ARCHIVES[kind]
    path = root / name
    if not path.is_file():
        raise DatasetNotFoundError(
            f"ImageNet: {path} is missing. ImageNet is not downloaded automatically: get {name} from "
            f"https://image-net.org (after registering) and put it in {root}"
        )
    problem = check_file(path, Expect.of(md5=md5))
    if problem is not None:
        raise DatasetError(f"ImageNet: {problem}; the archive is damaged or not the official {name}: download it "
                           "again")
    return path


def parse_devkit(root: Path) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """``(wnid -> class names, the validation images' wnids in file order)`` from the devkit archive."""
    sio = require("scipy.io", "Reading ImageNet's devkit (meta.mat)", "scipy")
    archive = _archive(root, "devkit")
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        unpack(archive, Path(tmp), "ImageNet")
        data = Path(tmp) / "ILSVRC2012_devkit_t12" / "data"
        synsets = sio.loadmat(str(data / "meta.mat"), squeeze_me=True)["synsets"]
        leaves = synsets[synsets["num_children"] == 0]  # the 1,000 classes; the rest are WordNet ancestors
        idx_to_wnid = {int(i): str(w) for i, w in zip(leaves["ILSVRC2012_ID"], leaves["WNID"])}
        wnid_to_classes = {str(w): tuple(str(words).split(", ")) for w, words in zip(leaves["WNID"], leaves["words"])}
        lines = (data / "ILSVRC2012_validation_ground_truth.txt").read_text().split()
    return wnid_to_classes, [idx_to_wnid[int(i)] for i in lines]


def _sort_val(root: Path, val_wnids: list[str]) -> None:
    """Extract the flat validation archive and move each image into its class folder (torchvision's layout)."""
    archive = _archive(root, "val")
    staging = Path(tempfile.mkdtemp(prefix=".val-", dir=root))
    try:
        unpack(archive, staging, "ImageNet")
        images = sorted(p for p in staging.iterdir() if p.is_file() and not p.name.startswith("."))
        if len(images) != len(val_wnids):
            raise DatasetError(f"ImageNet: {archive.name} holds {len(images)} images but the devkit labels "
                               f"{len(val_wnids)}; the archives do not belong together")
        for wnid in set(val_wnids):
            (staging / wnid).mkdir()
        for wnid, image in zip(val_wnids, images):
            image.rename(staging / wnid / image.name)
        for leftover in staging.iterdir():  # extraction markers
            if leftover.is_file():
                leftover.unlink()
        staging.rename(root / "val")  # the split folder appears complete or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sort_train(root: Path) -> None:
    """The train archive holds one tar per class (``<wnid>.tar``): extract each into ``train/<wnid>/``."""
    archive = _archive(root, "train")
    staging = Path(tempfile.mkdtemp(prefix=".train-", dir=root))
    try:
        unpack(archive, staging, "ImageNet")
        for inner in sorted(staging.glob("*.tar")):
            unpack(inner, staging / inner.stem, "ImageNet")
            inner.unlink()
        for leftover in staging.iterdir():
            if leftover.is_file():
                leftover.unlink()
        staging.rename(root / "train")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class ImageNet(ImageFolder):
    """``ImageNet(root, split="train"|"val", transform=None, target_transform=None, loader=default_loader)``.

    ``ds[i]`` is ``((H, W, 3) uint8 ndarray, class_index)``; ``classes`` holds each class's names (a
    tuple), ``wnids`` the WordNet ids (sorted, which is the standard class index order), and
    ``class_to_idx`` maps every name to its index, as torchvision's.
    """

    def __init__(self, root: str | os.PathLike[str], split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, loader: Callable[[str], Any] = default_loader) -> None:
        self.split = check_choice(split, "split", ("train", "val"))
        root = resolve_root(root)
        wnid_to_classes = self._prepare(root, split)
        super().__init__(root / split, transform=transform, target_transform=target_transform, loader=loader)
        self.root = root
        self.wnids = self.classes
        self.wnid_to_idx = self.class_to_idx
        self.classes = [wnid_to_classes[w] for w in self.wnids]
        self.class_to_idx = {name: i for i, names in enumerate(self.classes) for name in names}

    @property
    def split_folder(self) -> Path:
        return self.root / self.split

    @staticmethod
    def _prepare(root: Path, split: str) -> dict[str, tuple[str, ...]]:
        from hubkit import load, save

        with file_lock(root):
            meta = root / META_FILE
            if meta.is_file():
                wnid_to_classes, val_wnids = load(meta)
            else:
                wnid_to_classes, val_wnids = parse_devkit(root)
                tmp = meta.with_name(f".{META_FILE}.{os.getpid()}.tmp")
                save((wnid_to_classes, val_wnids), tmp)
                os.replace(tmp, meta)
            if not (root / split).is_dir() and split == "val":
                _sort_val(root, list(val_wnids))
            elif not (root / split).is_dir():
                _sort_train(root)
        return dict(wnid_to_classes)

    def extra_repr(self) -> str:
        return f"Split: {self.split}"


__all__ = ["ARCHIVES", "ImageNet", "parse_devkit"]
