"""LibriSpeech (OpenSLR 12): read English audiobook speech at 16 kHz with transcripts, torchaudio's class.

On disk (torchaudio's layout): ``root/<subset>.tar.gz`` extracts to ``root/LibriSpeech/<subset>/<speaker>/<chapter>/``
holding ``<speaker>-<chapter>-<utterance>.flac`` and ``<speaker>-<chapter>.trans.txt`` (one line per utterance:
its id, a space, the upper-case transcript). The transcripts are indexed once and the index cached under
``root/LibriSpeech/hubkit-cache/<subset>.*``; the audio is decoded per item with ``soundfile`` (extra ``audio``).

Checksums: the sha256 of each archive is torchaudio's (``_CHECKSUMS`` in torchaudio/datasets/librispeech.py), the
md5 is OpenSLR's ``resources/12/md5sum.txt``; both are checked. Only test-clean's byte size is recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub import Resource

from .._array_cache import CACHE_FOLDER, ArrayCache, cached_arrays
from .._dataset import check_choice
from .._files import RawFile, extracted_folder
from .._registry import register_dataset
from .._roots import resolve_root
from .._strings import pack_strings, unpack_string
from .sndfile import read_soundfile, require_soundfile

__all__ = ["LIBRISPEECH"]

URL = "train-clean-100"
FOLDER_IN_ARCHIVE = "LibriSpeech"
SAMPLE_RATE = 16000
_BASE = "http://www.openslr.org/resources/12/"
# OpenSLR's regional mirrors of the same files (the hashes guard whatever they serve).
_MIRRORS = ("https://us.openslr.org/resources/12/", "https://openslr.elda.org/resources/12/")

# subset: (sha256, md5, size in bytes or None)
_FILES: dict[str, tuple[str, str, int | None]] = {
    "dev-clean": ("76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
                  "42e2234ba48799c1f50f24a7926300a1", None),
    "dev-other": ("12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
                  "c8d0bcc9cca99d4f8b62fcc847357931", None),
    "test-clean": ("39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
                   "32fa31d27d2e1cad72775fee3f4849a9", 346_663_984),
    "test-other": ("d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
                   "fb5a50374b501bb3bac4815ee91d3135", None),
    "train-clean-100": ("d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
                        "2a93770f6d5c6c964bc36631d331a522", None),
    "train-clean-360": ("146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
                        "c0e676e450a7ff2f54aeade5171606fa", None),
    "train-other-500": ("ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
                        "d1a0fd59409feb2c614ce4d30c387708", None),
}
SUBSETS = tuple(_FILES)


def _read_transcripts(path: Path) -> dict[str, str]:
    """``{utterance id: transcript}`` of one ``<speaker>-<chapter>.trans.txt`` file."""
    out = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc}); the extracted dataset is damaged") from exc
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        fileid, sep, transcript = line.partition(" ")
        if not sep:
            raise DatasetError(f"{path}, line {lineno}: expected '<utterance id> <transcript>', found {line!r}")
        out[fileid] = transcript
    return out


def build_index(subset_dir: Path) -> tuple[dict[str, np.ndarray], list[Path]]:
    """Index every ``*/*/*.flac`` under ``subset_dir`` (sorted by file name, as torchaudio's walker is).

    Returns the arrays to cache (``ids`` (N, 3) int64 speaker/chapter/utterance, the file stems and the
    transcripts packed as offsets + UTF-8 blob) and the paths whose change makes the index stale (the subset,
    speaker and chapter folders, whose mtimes change when files come or go, and the transcript files).
    """
    flacs = sorted(subset_dir.glob("*/*/*.flac"), key=lambda p: p.stem)
    transcripts: dict[Path, dict[str, str]] = {}
    stems, texts, ids = [], [], []
    for flac in flacs:
        parts = flac.stem.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise DatasetError(f"{flac}: expected a name '<speaker>-<chapter>-<utterance>.flac' of three numbers")
        speaker, chapter, _ = parts
        trans = flac.parent / f"{speaker}-{chapter}.trans.txt"
        if trans not in transcripts:
            if not trans.is_file():
                raise DatasetError(f"{flac} has no transcript file {trans}; the extracted dataset is incomplete")
            transcripts[trans] = _read_transcripts(trans)
        text = transcripts[trans].get(flac.stem)
        if text is None:
            raise DatasetError(f"{trans} has no transcript for {flac.stem}; the extracted dataset is damaged")
        stems.append(flac.stem)
        texts.append(text)
        ids.append([int(p) for p in parts])
    stem_offsets, stem_blob = pack_strings(stems)
    text_offsets, text_blob = pack_strings(texts)
    arrays = {
        "ids": np.asarray(ids, dtype=np.int64).reshape(-1, 3),
        "stem_offsets": stem_offsets, "stem_blob": stem_blob, "text_offsets": text_offsets, "text_blob": text_blob,
    }
    speakers = sorted({f.parent.parent for f in flacs})
    chapters = sorted({f.parent for f in flacs})
    return arrays, [subset_dir, *speakers, *chapters, *sorted(transcripts)]


@register_dataset
class LIBRISPEECH:
    """LibriSpeech as torchaudio has it.

    ``LIBRISPEECH(root=None, url="train-clean-100", folder_in_archive="LibriSpeech", download=False)``; ``url`` is
    one of ``dev-clean``, ``dev-other``, ``test-clean``, ``test-other``, ``train-clean-100``, ``train-clean-360``,
    ``train-other-500``. ``ds[n]`` is ``(waveform (1, T) float32 ndarray, 16000, transcript, speaker_id,
    chapter_id, utterance_id)``; ``get_metadata(n)`` gives the path relative to ``root/folder_in_archive``
    instead of the waveform, without decoding anything. Decoding FLAC needs ``soundfile``
    (``pip install 'hubkit[audio]'``).
    """

    resources: tuple[Resource, ...] = tuple(
        Resource(url=f"{_BASE}{name}.tar.gz", sha256=sha256, md5=md5, size=size,
                 mirrors=tuple(f"{m}{name}.tar.gz" for m in _MIRRORS))
        for name, (sha256, md5, size) in _FILES.items()
    )
    #: What ``hubkit.datasets.download("LIBRISPEECH")`` fetches: the default subset only.
    download_files = (f"{URL}.tar.gz",)
    _ext_audio = ".flac"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        url: str = URL,
        folder_in_archive: str = FOLDER_IN_ARCHIVE,
        download: bool = False,
    ) -> None:
        check_choice(url, "url", SUBSETS)
        require_soundfile("LIBRISPEECH")  # before any download: without it no item can be read
        self.root = resolve_root(root)
        self._url = url
        self._archive = self.root / folder_in_archive
        self._path = self._archive / url
        res = self.resources[SUBSETS.index(url)]
        extracted_folder("LIBRISPEECH", RawFile(res, self.root), self.root, self._path, download)

        def build() -> tuple[dict[str, np.ndarray], dict, list[Path]]:
            arrays, sources = build_index(self._path)
            if not len(arrays["ids"]):
                raise DatasetError(f"LIBRISPEECH: {self._path} holds no '*/*/*.flac' files; the folder is not a "
                                   "LibriSpeech subset. Delete it and pass download=True.")
            return arrays, {"subset": url}, sources

        keys = ("ids", "stem_offsets", "stem_blob", "text_offsets", "text_blob")
        arrays, _ = cached_arrays(ArrayCache(self._archive / CACHE_FOLDER, url, keys), build)
        self._ids = arrays["ids"]
        self._stems = (arrays["stem_offsets"], arrays["stem_blob"])
        self._texts = (arrays["text_offsets"], arrays["text_blob"])

    def _index(self, n: int) -> int:
        size = len(self)
        i = n + size if n < 0 else n
        if not 0 <= i < size:
            raise IndexError(f"index {n} is out of range for LIBRISPEECH {self._url} of {size} utterances")
        return i

    def get_metadata(self, n: int) -> tuple[str, int, str, int, int, int]:
        """``(path relative to root/folder_in_archive, 16000, transcript, speaker_id, chapter_id, utterance_id)``."""
        i = self._index(n)
        speaker, chapter, utterance = (int(v) for v in self._ids[i])
        stem = unpack_string(*self._stems, i)
        speaker_dir, chapter_dir, _ = stem.split("-")  # the folder names exactly as on disk
        relpath = os.path.join(self._url, speaker_dir, chapter_dir, stem + self._ext_audio)
        return relpath, SAMPLE_RATE, unpack_string(*self._texts, i), speaker, chapter, utterance

    def __getitem__(self, n: int) -> tuple[np.ndarray, int, str, int, int, int]:
        """``(waveform (1, T) float32, 16000, transcript, speaker_id, chapter_id, utterance_id)``."""
        relpath, sample_rate, transcript, speaker, chapter, utterance = self.get_metadata(n)
        waveform, rate = read_soundfile(self._archive / relpath, "LIBRISPEECH")
        if rate != sample_rate:
            raise DatasetError(f"{self._archive / relpath}: sample rate {rate}, expected {sample_rate}")
        return waveform, rate, transcript, speaker, chapter, utterance

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"LIBRISPEECH(url={self._url!r}, utterances={len(self)}, root={str(self.root)!r})"
