"""LIBRISPEECH: a tar.gz in OpenSLR's layout with real FLAC files, served locally; torchaudio trees; soundfile."""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest
from dsfiles import serve, tar_gz

from hubkit.datasets import LIBRISPEECH
from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError, MissingDependencyError

sf = pytest.importorskip("soundfile")  # the `test` extra installs it; the archives below need it to be written

# (speaker, chapter, utterance) -> (number of samples, transcript). Speaker "121" sorts after "1089" as text,
# which is torchaudio's order (its walker sorts file names, not numbers).
UTTERANCES = {
    ("1089", "134686", "0000"): (40, "HE HOPED THERE WOULD BE STEW FOR DINNER"),
    ("1089", "134686", "0001"): (23, "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM"),
    ("121", "123852", "0004"): (31, "O'ER THE SEA"),
}


def samples(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, n).astype(np.int16)


def flac_bytes(pcm: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, pcm, rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def tree(subset: str, rate: int = 16000) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The members of ``<subset>.tar.gz`` as OpenSLR ships it, and the PCM of each utterance by file stem."""
    members: dict[str, bytes] = {"LibriSpeech/README.TXT": b"LibriSpeech ASR corpus\n",
                                 "LibriSpeech/SPEAKERS.TXT": b";ID |SEX| SUBSET |MINUTES| NAME\n"}
    pcm, transcripts = {}, {}
    for i, ((spk, ch, utt), (n, text)) in enumerate(UTTERANCES.items()):
        stem = f"{spk}-{ch}-{utt}"
        pcm[stem] = samples(n, i)
        members[f"LibriSpeech/{subset}/{spk}/{ch}/{stem}.flac"] = flac_bytes(pcm[stem], rate)
        transcripts.setdefault((spk, ch), []).append(f"{stem} {text}\n")
    for (spk, ch), lines in transcripts.items():
        members[f"LibriSpeech/{subset}/{spk}/{ch}/{spk}-{ch}.trans.txt"] = "".join(lines).encode()
    return members, pcm


def write_tree(root, members: dict[str, bytes]) -> None:
    for name, data in members.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_declares_every_subset_with_upstream_hashes():
    by_name = {os.path.basename(r.url): r for r in LIBRISPEECH.resources}
    assert sorted(by_name) == sorted(f"{s}.tar.gz" for s in (
        "dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-clean-360", "train-other-500"))
    assert all(r.url == f"http://www.openslr.org/resources/12/{n}" for n, r in by_name.items())
    assert all(len(r.sha256) == 64 and len(r.md5) == 32 for r in by_name.values())
    clean = by_name["test-clean.tar.gz"]
    assert clean.sha256 == "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"
    assert (clean.md5, clean.size) == ("32fa31d27d2e1cad72775fee3f4849a9", 346_663_984)
    assert by_name["test-other.tar.gz"].md5 == "fb5a50374b501bb3bac4815ee91d3135"


def test_download_extract_index_and_decode(server, monkeypatch, forbid, tmp_path):
    members, pcm = tree("test-clean")
    paths = serve(server, monkeypatch, LIBRISPEECH, {"test-clean.tar.gz": tar_gz(members)})
    ds = LIBRISPEECH(tmp_path, url="test-clean", download=True)
    assert len(ds) == 3
    assert (tmp_path / "test-clean.tar.gz").is_file()
    assert (tmp_path / "LibriSpeech" / "test-clean" / "1089" / "134686").is_dir()
    assert [ds.get_metadata(i) for i in range(3)] == [
        (os.path.join("test-clean", "1089", "134686", "1089-134686-0000.flac"), 16000,
         "HE HOPED THERE WOULD BE STEW FOR DINNER", 1089, 134686, 0),
        (os.path.join("test-clean", "1089", "134686", "1089-134686-0001.flac"), 16000,
         "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM", 1089, 134686, 1),
        (os.path.join("test-clean", "121", "123852", "121-123852-0004.flac"), 16000, "O'ER THE SEA", 121, 123852, 4),
    ]
    wave, rate, text, speaker, chapter, utterance = ds[-1]
    assert (rate, text, speaker, chapter, utterance) == (16000, "O'ER THE SEA", 121, 123852, 4)
    assert wave.shape == (1, 31) and wave.dtype == np.float32
    np.testing.assert_array_equal(wave[0], pcm["121-123852-0004"] / np.float32(32768))  # FLAC is lossless
    with pytest.raises(IndexError):
        ds[3]

    # a second construction reads neither the archive nor the transcripts: the index is cached
    forbid("hubkit.datasets._files.extract", "hubkit.datasets.audio.librispeech.build_index")
    again = LIBRISPEECH(tmp_path, url="test-clean", download=True)
    assert again.get_metadata(1)[2] == "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM"
    np.testing.assert_array_equal(again[0][0][0], pcm["1089-134686-0000"] / np.float32(32768))
    assert server.count(paths["test-clean.tar.gz"]) == 1


def test_existing_torchaudio_tree_is_used_without_download(forbid, tmp_path):
    members, pcm = tree("dev-clean")
    write_tree(tmp_path, members)
    forbid("hubkit.datasets._files.fetch", "hubkit.datasets._files.extract")
    ds = LIBRISPEECH(str(tmp_path), url="dev-clean")
    assert [ds.get_metadata(i)[3:] for i in range(len(ds))] == [(1089, 134686, 0), (1089, 134686, 1), (121, 123852, 4)]
    np.testing.assert_array_equal(ds[1][0][0], pcm["1089-134686-0001"] / np.float32(32768))

    # a chapter that gains an utterance later is re-indexed (its folder's mtime moves, as it does on any copy)
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "121" / "123852"
    (chapter / "121-123852-0005.flac").write_bytes(flac_bytes(samples(5, 9)))
    with open(chapter / "121-123852.trans.txt", "a", encoding="utf-8") as f:
        f.write("121-123852-0005 AND THE LAND\n")
    st = chapter.stat()
    os.utime(chapter, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    grown = LIBRISPEECH(tmp_path, url="dev-clean")
    assert len(grown) == 4 and grown.get_metadata(3)[2] == "AND THE LAND"


def test_missing_soundfile_is_a_clear_error(monkeypatch, tmp_path):
    write_tree(tmp_path, tree("test-clean")[0])
    monkeypatch.setitem(sys.modules, "soundfile", None)  # makes `import soundfile` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'hubkit\[audio\]'"):
        LIBRISPEECH(tmp_path, url="test-clean")


def test_bad_arguments_missing_and_damaged_data(tmp_path):
    with pytest.raises(ArgumentError, match="test-clean"):
        LIBRISPEECH(tmp_path, url="test_clean")
    with pytest.raises(DatasetNotFoundError, match=r"test-other\.tar\.gz"):
        LIBRISPEECH(tmp_path, url="test-other")

    members, _ = tree("dev-other")
    members["LibriSpeech/dev-other/1089/134686/1089-134686.trans.txt"] = b"1089-134686-0000 ONLY ONE LINE\n"
    write_tree(tmp_path, members)
    with pytest.raises(DatasetError, match="no transcript for 1089-134686-0001"):
        LIBRISPEECH(tmp_path, url="dev-other")

    members, _ = tree("train-clean-100", rate=8000)
    members["LibriSpeech/train-clean-100/121/123852/121-123852-0004.flac"] = b"fLaC" + b"\0" * 40
    write_tree(tmp_path, members)
    ds = LIBRISPEECH(tmp_path)  # torchaudio's default subset
    with pytest.raises(DatasetError, match="sample rate 8000, expected 16000"):
        ds[0]
    with pytest.raises(DatasetError, match="cannot decode"):
        ds[2]
