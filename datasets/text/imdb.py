"""IMDB movie reviews (sentiment), torchtext's function: ``train, test = IMDB()``.

On disk: ``root/IMDB/aclImdb_v1.tar.gz`` extracts to ``root/IMDB/aclImdb/{train,test}/{neg,pos}/*.txt``;
the texts of a split are cached under ``root/IMDB/hubkit-cache/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hubkit.errors import DatasetError
from hubkit.hub import Resource

from .._files import RawFile, extracted_folder
from .._registry import register_dataset
from ._textset import TextClassificationDataset, load_splits

__all__ = ["IMDB"]

DATASET_NAME = "IMDB"
NUM_LINES = {"train": 25000, "test": 25000}
LABELS = {"neg": 1, "pos": 2}


def _review_key(path: Path) -> tuple[int, int, str]:
    m = re.fullmatch(r"(\d+)_(\d+)", path.stem)  # "<review id>_<rating>.txt"
    return (int(m.group(1)), int(m.group(2)), path.name) if m else (1 << 62, 0, path.name)


# Resources as data (module attributes, so ``hubkit.datasets.resources("IMDB")`` and tests can see them).
resources: tuple[Resource, ...] = (
    Resource(url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
             md5="7c2ac02c03563afcf9b574c7e56c153a", size=84125825),
)


def resource_folder(root: Path) -> Path:
    """Where the archive goes and is extracted: ``root/IMDB``."""
    return Path(root) / DATASET_NAME


def read_imdb_split(folder: Path) -> tuple[list[int], list[str]]:
    """Labels (neg 1, pos 2) and texts of ``aclImdb/<split>``: all ``neg`` reviews, then ``pos``, by id."""
    labels, texts = [], []
    for name, label in LABELS.items():
        sub = folder / name
        if not sub.is_dir():
            raise DatasetError(f"IMDB: {sub} is missing; the extracted archive is incomplete. Delete it and retry.")
        for path in sorted(sub.glob("*.txt"), key=_review_key):
            labels.append(label)
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return labels, texts


def _read(folder: Path, split: str, download: bool) -> tuple[list[int], list[str], list[Path]]:
    tree = extracted_folder(DATASET_NAME, RawFile(resources[0], folder), folder, folder / "aclImdb", download)
    return (*read_imdb_split(tree / split), [])


@register_dataset
def IMDB(  # noqa: N802 - torchtext's name
    root: str | os.PathLike[str] | None = None,
    split: str | tuple[str, ...] = ("train", "test"),
    download: bool = True,
) -> TextClassificationDataset | tuple[TextClassificationDataset, ...]:
    """IMDB splits ``train`` and ``test`` (25,000 reviews each); items are ``(label, text)``, neg 1 / pos 2.

    A string ``split`` returns one dataset, a tuple one per name, as torchtext does. Like torchtext, it
    downloads what is missing unless ``download=False``.
    """
    return load_splits(DATASET_NAME, root, split, download, _read)

