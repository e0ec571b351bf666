"""STS benchmark (Cer et al., SemEval-2017): English sentence pairs with a 0-5 similarity score.

Source: the file sentence-transformers' examples (``training_stsbenchmark.py`` and others, before the move to the
Hugging Face dataset ``sentence-transformers/stsb``) download, ``https://sbert.net/datasets/stsbenchmark.tsv.gz``:
gzip'd UTF-8 TSV with a header row (columns ``split``, ``genre``, ``dataset``, ``year``, ``sid``, ``score``,
``sentence1``, ``sentence2``) read with ``quoting=csv.QUOTE_NONE``; ``split`` is ``train`` (5,749 pairs), ``dev``
(1,500) or ``test`` (1,379). This is not torchtext's ``STSB`` (GLUE's copy, whose test labels are hidden).

On disk: ``root/STSB/stsbenchmark.tsv.gz``; the parsed split is cached under ``root/STSB/hubkit-cache/``.

Checksum: sbert.net publishes none, so the resource carries no hash (``unverified_files``). ``hub.fetch`` records
the sha256 of what it received in the file's sidecar at the first download, and later constructions check the file
against that recorded sha256 (trust on first use). A file put in place by hand has no sidecar and is used as is.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub import Resource
from hubkit.hub.transport.cache import read_record

from .._array_cache import CACHE_FOLDER, ArrayCache, cached_arrays
from .._dataset import check_choice
from .._files import RawFile, locate
from .._registry import register_dataset
from .._roots import resolve_root
from .._strings import pack_strings, unpack_string

__all__ = ["STSB"]

log = logging.getLogger("hubkit.datasets")

DATASET_NAME = "STSB"
_FILE = "stsbenchmark.tsv.gz"
_SPLIT_IN_FILE = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}
_COLUMNS = ("split", "score", "sentence1", "sentence2")


def read_stsb_tsv(path: Path, split: str) -> tuple[list[str], list[str], list[float]]:
    """``(sentence1s, sentence2s, scores 0-5)`` of the rows whose ``split`` column is ``split`` (train/dev/test)."""
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path} is not a complete gzip file ({exc}); delete it and download it again") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} does not hold UTF-8 text ({exc}); delete it and download it again") from exc
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise DatasetError(f"{path}: the header lacks the column(s) {', '.join(missing)} (found {reader.fieldnames}); "
                           "it is not the STS benchmark TSV. Delete it and download it again.")
    s1, s2, scores = [], [], []
    for row in reader:
        if any(row[c] is None for c in _COLUMNS):
            raise DatasetError(f"{path}, line {reader.line_num}: fewer fields than the header names; the file is "
                               "damaged. Delete it and download it again.")
        if row["split"] != split:
            continue
        try:
            score = float(row["score"])
        except ValueError as exc:
            raise DatasetError(f"{path}, line {reader.line_num}: score {row['score']!r} is not a number") from exc
        s1.append(row["sentence1"])
        s2.append(row["sentence2"])
        scores.append(score)
    return s1, s2, scores


@register_dataset
class STSB:
    """``STSB(root=None, split="test", download=False)``: ``split`` is ``"train"``, ``"validation"`` (the file's
    ``dev`` rows; ``"dev"`` is accepted too) or ``"test"``.

    ``ds[i]`` is ``(sentence1, sentence2, score / 5.0)`` with the score as a float in [0, 1], the label
    sentence-transformers' ``EmbeddingSimilarityEvaluator`` examples use; ``ds.scores`` is all of them as a
    (N,) float64 array.
    """

    resources: tuple[Resource, ...] = (Resource(url="https://sbert.net/datasets/" + _FILE),)
    #: Files whose publisher gives no checksum: verified against the sha256 recorded at their first download.
    unverified_files: tuple[str, ...] = (_FILE,)

    def __init__(self, root: str | os.PathLike[str] | None = None, split: str = "test", download: bool = False) -> None:
        check_choice(split, "split", ("train", "validation", "test", "dev"))
        self.root = resolve_root(root)
        self.split = split
        folder = self.resource_folder(self.root)

        def build() -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
            path = self._raw_file(folder, download)
            s1, s2, scores = read_stsb_tsv(path, _SPLIT_IN_FILE[split])
            if not scores:
                raise DatasetError(f"{path} holds no rows of split {_SPLIT_IN_FILE[split]!r}; it is not the STS "
                                   "benchmark TSV. Delete it and download it again.")
            o1, b1 = pack_strings(s1)
            o2, b2 = pack_strings(s2)
            arrays = {"scores": np.asarray(scores, dtype=np.float64), "s1_offsets": o1, "s1_blob": b1,
                      "s2_offsets": o2, "s2_blob": b2}
            return arrays, {}, [path]

        keys = ("scores", "s1_offsets", "s1_blob", "s2_offsets", "s2_blob")
        arrays, _ = cached_arrays(ArrayCache(folder / CACHE_FOLDER, _SPLIT_IN_FILE[split], keys), build)
        self._raw_scores = arrays["scores"]
        self._s1 = (arrays["s1_offsets"], arrays["s1_blob"])
        self._s2 = (arrays["s2_offsets"], arrays["s2_blob"])

    @classmethod
    def resource_folder(cls, root: Path) -> Path:
        """Where the TSV goes: ``root/STSB``."""
        return Path(root) / DATASET_NAME

    @classmethod
    def _raw_file(cls, folder: Path, download: bool) -> Path:
        """The TSV on disk, checked against the sha256 recorded when it was first downloaded."""
        res = cls.resources[0]
        local = folder / _FILE
        record = read_record(local) if local.is_file() else None
        pinned = record is not None and bool(record.sha256)
        if pinned:
            res = dataclasses.replace(res, sha256=record.sha256)
        (path,) = locate(DATASET_NAME, [RawFile(res, folder)], download)
        if not pinned:
            first = read_record(path)  # hub.fetch writes it; a file put in place by hand has none and stays unpinned
            if first is not None and first.sha256:
                log.warning("STSB: %s has no published checksum; trusting it as first downloaded (sha256 %s) and "
                            "checking it against that from now on", path, first.sha256)
        return path

    @property
    def scores(self) -> np.ndarray:
        """(N,) float64: every pair's score / 5.0, in [0, 1]."""
        return self._raw_scores / 5.0

    def __getitem__(self, index: int) -> tuple[str, str, float]:
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for STSB {self.split} of {n} pairs")
        return unpack_string(*self._s1, i), unpack_string(*self._s2, i), float(self._raw_scores[i]) / 5.0

    def __len__(self) -> int:
        return len(self._raw_scores)

    def __iter__(self) -> Iterator[tuple[str, str, float]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"STSB(split={self.split!r}, pairs={len(self)}, root={str(self.root)!r})"
