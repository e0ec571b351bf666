"""YESNO (OpenSLR 1): 60 recordings of eight Hebrew yes/no words, torchaudio's class and layout.

On disk: ``root/waves_yesno.tar.gz`` extracts to ``root/waves_yesno/*.wav`` (torchaudio's layout).
Recordings are decoded on access with the standard library's ``wave`` module.
"""

from __future__ import annotations

import os

import numpy as np

from hubkit.hub import Resource

from .._files import RawFile, extracted_folder
from .._registry import register_dataset
from .._roots import resolve_root
from .wav import read_wav

__all__ = ["YESNO"]

_URL = "http://www.openslr.org/resources/1/waves_yesno.tar.gz"


@register_dataset
class YESNO:
    """``YESNO(root=None, url=..., folder_in_archive="waves_yesno", download=False)``.

    ``ds[n]`` is ``(waveform (1, T) float32, sample_rate, labels list[int])``; labels come from the file
    name (``0_1_0_0_1_0_1_1.wav``). Files are sorted by name. A ``url`` other than the default is
    downloaded without a checksum, as torchaudio does.
    """

    resources: tuple[Resource, ...] = (
        Resource(url=_URL, sha256="c3f49e0cca421f96b75b41640749167b52118f232498667ca7a5f9416aef8e73"),
    )
    classes = ["no", "yes"]

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        url: str = _URL,
        folder_in_archive: str = "waves_yesno",
        download: bool = False,
    ) -> None:
        self.root = resolve_root(root)
        res = self.resources[0] if url == _URL else Resource(url=url)
        self._path = self.root / folder_in_archive
        extracted_folder("YESNO", RawFile(res, self.root), self.root, self._path, download)
        self._walker = sorted(p.stem for p in self._path.glob("*.wav"))

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __getitem__(self, n: int) -> tuple[np.ndarray, int, list[int]]:
        """``(waveform (1, T) float32, sample_rate, labels)`` of the ``n``-th recording."""
        fileid = self._walker[n]
        waveform, sample_rate = read_wav(self._path / f"{fileid}.wav")
        return waveform, sample_rate, [int(c) for c in fileid.split("_")]

    def __len__(self) -> int:
        return len(self._walker)
