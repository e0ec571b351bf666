"""AG_NEWS (news topic classification), torchtext's function: ``train, test = AG_NEWS()``.

On disk: ``root/AG_NEWS/{train,test}.csv`` (torchtext's layout under its ``datasets`` folder); the parsed
texts are cached under ``root/AG_NEWS/hubkit-cache/``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from hubkit.errors import DatasetError
from hubkit.hub import Resource

from .._files import RawFile, locate
from .._registry import register_dataset
from ._textset import TextClassificationDataset, load_splits

__all__ = ["AG_NEWS"]

_BASE = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
DATASET_NAME = "AG_NEWS"
NUM_LINES = {"train": 120000, "test": 7600}


# Resources as data (module attributes, so ``hubkit.datasets.resources("AG_NEWS")`` and tests can see them).
resources: tuple[Resource, ...] = tuple(
    Resource(url=_BASE + f"{name}.csv", md5=md5, filename=f"{name}.csv")
    for name, md5 in (("train", "b1a00f826fdfbd249f79597b59e1dc12"), ("test", "d52ea96a97a2d943681189a97654912d"))
)


def resource_folder(root: Path) -> Path:
    """Where the CSV files go: ``root/AG_NEWS``."""
    return Path(root) / DATASET_NAME


def read_ag_news_csv(path: Path) -> tuple[list[int], list[str]]:
    """Labels (1..4) and texts (the remaining CSV fields joined by a space) of an AG_NEWS CSV file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc}); delete it and download it again") from exc
    labels, texts = [], []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row:
            continue
        try:
            labels.append(int(row[0]))
        except ValueError as exc:
            raise DatasetError(f"{path}, line {lineno}: expected a class number first, found {row[0]!r}") from exc
        texts.append(" ".join(row[1:]))
    return labels, texts


def _read(folder: Path, split: str, download: bool) -> tuple[list[int], list[str], list[Path]]:
    res = next(r for r in resources if (r.filename or "").startswith(split))
    (path,) = locate(DATASET_NAME, [RawFile(res, folder)], download)
    return (*read_ag_news_csv(path), [path])


@register_dataset
def AG_NEWS(  # noqa: N802 - torchtext's name
    root: str | os.PathLike[str] | None = None,
    split: str | tuple[str, ...] = ("train", "test"),
    download: bool = True,
) -> TextClassificationDataset | tuple[TextClassificationDataset, ...]:
    """AG_NEWS splits: ``train`` (120,000) and ``test`` (7,600); items are ``(label 1..4, text)``.

    A string ``split`` returns one dataset, a tuple returns one per name, as torchtext does. Like
    torchtext, it downloads what is missing unless ``download=False``.
    """
    return load_splits(DATASET_NAME, root, split, download, _read)

