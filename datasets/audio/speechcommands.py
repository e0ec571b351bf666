"""Speech Commands (v0.01 / v0.02): one-second 16 kHz keyword recordings, torchaudio's class and subsets.

On disk: ``root/speech_commands_v0.02.tar.gz`` extracts to ``root/SpeechCommands/speech_commands_v0.02/``
(``<label>/<speaker>_nohash_<n>.wav``, ``validation_list.txt``, ``testing_list.txt``), torchaudio's layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub import Resource

from .._dataset import check_choice
from .._files import RawFile, extracted_folder
from .._registry import register_dataset
from .._roots import resolve_root
from .wav import read_wav

__all__ = ["SPEECHCOMMANDS"]

FOLDER_IN_ARCHIVE = "SpeechCommands"
URL = "speech_commands_v0.02"
HASH_DIVIDER = "_nohash_"
EXCEPT_FOLDER = "_background_noise_"
SAMPLE_RATE = 16000
_BASE = "http://download.tensorflow.org/data/"


def _load_list(root: str, *filenames: str) -> list[str]:
    out = []
    for filename in filenames:
        path = os.path.join(root, filename)
        try:
            with open(path, encoding="utf-8") as f:
                out += [os.path.normpath(os.path.join(root, line.strip())) for line in f if line.strip()]
        except FileNotFoundError as exc:
            raise DatasetError(f"Speech Commands: {path} is missing; the extracted tree is incomplete") from exc
    return out


@register_dataset
class SPEECHCOMMANDS:
    """Speech Commands as torchaudio has it.

    ``SPEECHCOMMANDS(root=None, url="speech_commands_v0.02", folder_in_archive="SpeechCommands",
    download=False, subset=None)``.

    ``subset``: None (everything), ``"validation"`` / ``"testing"`` (the files in ``validation_list.txt`` /
    ``testing_list.txt``, in their order) or ``"training"`` (all others); ``_background_noise_`` is never a
    sample. ``ds[n]`` is ``(waveform (1, T) float32, sample_rate, label, speaker_id, utterance_number)``;
    ``get_metadata(n)`` gives the relative path instead of the waveform.
    """

    resources: tuple[Resource, ...] = (
        Resource(url=_BASE + "speech_commands_v0.01.tar.gz",
                 sha256="743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d"),
        Resource(url=_BASE + "speech_commands_v0.02.tar.gz",
                 sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"),
    )
    #: What ``hubkit.datasets.download("SPEECHCOMMANDS")`` fetches: the default version only.
    download_files = ("speech_commands_v0.02.tar.gz",)

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        url: str = URL,
        folder_in_archive: str = FOLDER_IN_ARCHIVE,
        download: bool = False,
        subset: str | None = None,
    ) -> None:
        check_choice(subset, "subset", (None, "training", "validation", "testing"))
        self.root = resolve_root(root)
        if url in ("speech_commands_v0.01", "speech_commands_v0.02"):
            res = self.resources[int(url[-1]) - 1]
        else:
            res = Resource(url=url)
        archive = RawFile(res, self.root)
        basename = archive.path.name.rsplit(".", 2)[0]
        self._archive = str(self.root / folder_in_archive)
        self._path = os.path.join(self._archive, basename)
        extracted_folder("SPEECHCOMMANDS", archive, Path(self._path), Path(self._path), download)

        if subset == "validation":
            self._walker = _load_list(self._path, "validation_list.txt")
        elif subset == "testing":
            self._walker = _load_list(self._path, "testing_list.txt")
        else:
            excludes = set(_load_list(self._path, "validation_list.txt", "testing_list.txt")) if subset else set()
            walker = sorted(str(p) for p in Path(self._path).glob("*/*.wav"))
            self._walker = [
                w for w in walker
                if HASH_DIVIDER in w and EXCEPT_FOLDER not in w and os.path.normpath(w) not in excludes
            ]
        self.classes = sorted(
            e.name for e in os.scandir(self._path) if e.is_dir() and e.name != EXCEPT_FOLDER
        )

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def get_metadata(self, n: int) -> tuple[str, int, str, str, int]:
        """``(relative path, sample_rate, label, speaker_id, utterance_number)`` of the ``n``-th sample."""
        relpath = os.path.relpath(self._walker[n], self._archive)
        reldir, filename = os.path.split(relpath)
        label = os.path.basename(reldir)
        # Some test-set archives name files "xxx.wav.wav": strip the extension twice.
        stem = os.path.splitext(os.path.splitext(filename)[0])[0]
        speaker_id, _, utterance = stem.partition(HASH_DIVIDER)
        return relpath, SAMPLE_RATE, label, speaker_id, int(utterance)

    def __getitem__(self, n: int) -> tuple[np.ndarray, int, str, str, int]:
        """``(waveform (1, T) float32, sample_rate, label, speaker_id, utterance_number)``."""
        relpath, sample_rate, label, speaker_id, utterance = self.get_metadata(n)
        waveform, rate = read_wav(os.path.join(self._archive, relpath))
        if rate != sample_rate:
            raise DatasetError(f"{relpath}: sample rate {rate}, expected {sample_rate}")
        return waveform, rate, label, speaker_id, utterance

    def __len__(self) -> int:
        return len(self._walker)
