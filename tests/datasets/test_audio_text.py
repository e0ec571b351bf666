"""YESNO, SPEECHCOMMANDS (WAV in tar.gz), AG_NEWS (csv) and IMDB (tar.gz of text files)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from dsfiles import serve, tar_gz, total_gets, wav_bytes

import hubkit.datasets.text.ag_news as ag_news_mod
import hubkit.datasets.text.imdb as imdb_mod
from hubkit.datasets import AG_NEWS, IMDB, SPEECHCOMMANDS, YESNO
from hubkit.datasets.audio.wav import read_wav
from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError


def tone(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, n).astype(np.int16)


def test_read_wav_scales_like_torchaudio(tmp_path):
    samples = np.array([-32768, -1, 0, 1, 16384, 32767], np.int16)
    p = tmp_path / "a.wav"
    p.write_bytes(wav_bytes(samples, rate=16000))
    wave, rate = read_wav(p)
    assert rate == 16000 and wave.shape == (1, 6) and wave.dtype == np.float32
    np.testing.assert_array_equal(wave[0], samples / np.float32(32768))
    p.write_bytes(wav_bytes(samples)[:-4])
    with pytest.raises(DatasetError, match="truncated"):
        read_wav(p)
    p.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(DatasetError):
        read_wav(p)


def test_yesno_download_extract_items(server, monkeypatch, forbid, tmp_path):
    clips = {"0_1_0_0_1_0_1_1": tone(40, 1), "1_1_1_1_0_0_0_0": tone(25, 2), "0_0_0_0_0_0_0_0": tone(9, 3)}
    archive = tar_gz({f"waves_yesno/{k}.wav": wav_bytes(v) for k, v in clips.items()}
                     | {"waves_yesno/README": b"yes/no"})
    paths = serve(server, monkeypatch, YESNO, {"waves_yesno.tar.gz": archive})
    ds = YESNO(tmp_path, download=True)
    assert len(ds) == 3
    wave, rate, labels = ds[1]  # sorted by name
    assert rate == 8000 and labels == [0, 1, 0, 0, 1, 0, 1, 1]
    assert wave.shape == (1, 40) and wave.dtype == np.float32
    np.testing.assert_array_equal(wave[0], clips["0_1_0_0_1_0_1_1"] / np.float32(32768))
    forbid("hubkit.datasets._files.extract")
    assert YESNO(tmp_path, download=True)[2][2] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert server.count(paths["waves_yesno.tar.gz"]) == 1


def test_yesno_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="waves_yesno.tar.gz"):
        YESNO(tmp_path)


def speech_archive():
    files = {
        "yes/aa11_nohash_0.wav": tone(16, 1), "yes/bb22_nohash_1.wav": tone(16, 2),
        "no/aa11_nohash_0.wav": tone(16, 3), "no/cc33_nohash_2.wav": tone(16, 4),
        "up/dd44_nohash_0.wav": tone(16, 5), "_background_noise_/white.wav": tone(16, 6),
    }
    members = {name: wav_bytes(s, rate=16000) for name, s in files.items()}
    members["validation_list.txt"] = b"no/cc33_nohash_2.wav\nyes/aa11_nohash_0.wav\n"
    members["testing_list.txt"] = b"up/dd44_nohash_0.wav\n"
    return tar_gz(members), files


def test_speechcommands_subsets_as_torchaudio_defines_them(server, monkeypatch, forbid, tmp_path):
    archive, files = speech_archive()
    paths = serve(server, monkeypatch, SPEECHCOMMANDS, {"speech_commands_v0.02.tar.gz": archive})
    everything = SPEECHCOMMANDS(tmp_path, download=True)
    assert [everything.get_metadata(i)[0] for i in range(len(everything))] == [
        "speech_commands_v0.02/no/aa11_nohash_0.wav", "speech_commands_v0.02/no/cc33_nohash_2.wav",
        "speech_commands_v0.02/up/dd44_nohash_0.wav", "speech_commands_v0.02/yes/aa11_nohash_0.wav",
        "speech_commands_v0.02/yes/bb22_nohash_1.wav",
    ]
    assert (tmp_path / "SpeechCommands" / "speech_commands_v0.02" / "yes").is_dir()
    forbid("hubkit.datasets._files.extract")
    val = SPEECHCOMMANDS(tmp_path, subset="validation")
    assert [val[i][2:] for i in range(len(val))] == [("no", "cc33", 2), ("yes", "aa11", 0)]
    wave, rate, label, speaker, n = val[0]
    assert rate == 16000 and wave.shape == (1, 16)
    np.testing.assert_array_equal(wave[0], files["no/cc33_nohash_2.wav"] / np.float32(32768))
    test = SPEECHCOMMANDS(tmp_path, subset="testing")
    assert [test[i][2] for i in range(len(test))] == ["up"]
    train = SPEECHCOMMANDS(tmp_path, subset="training", download=True)
    assert [train.get_metadata(i)[2:] for i in range(len(train))] == [("no", "aa11", 0), ("yes", "bb22", 1)]
    assert train.classes == ["no", "up", "yes"]
    assert server.count(paths["speech_commands_v0.02.tar.gz"]) == 1
    with pytest.raises(ArgumentError):
        SPEECHCOMMANDS(tmp_path, subset="train")


def ag_news_csv(rows):
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def test_ag_news_download_parse_cache(server, monkeypatch, forbid, tmp_path):
    train_rows = [["3", "Wall St. Bears", "Short-sellers, \"ultra\"-cynics"], ["4", "Ünïcode", "line\\nbreak"]]
    test_rows = [["1", "World", "news"]]
    paths = serve(server, monkeypatch, ag_news_mod, {"train.csv": ag_news_csv(train_rows),
                                                     "test.csv": ag_news_csv(test_rows)})
    train, test = AG_NEWS(tmp_path)
    assert len(train) == 2 and len(test) == 1
    assert train[0] == (3, 'Wall St. Bears Short-sellers, "ultra"-cynics')
    assert train[1] == (4, "Ünïcode line\\nbreak")
    assert list(test) == [(1, "World news")]
    assert (tmp_path / "AG_NEWS" / "train.csv").is_file()
    forbid("hubkit.datasets.text.ag_news.read_ag_news_csv", "hubkit.hub.transport.verify.hash_file")
    before = total_gets(server)
    assert AG_NEWS(tmp_path, split="train")[1] == (4, "Ünïcode line\\nbreak")
    assert total_gets(server) == before and server.count(paths["train.csv"]) == 1


def test_ag_news_without_download_flag_reports_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train.csv"):
        AG_NEWS(tmp_path, split="train", download=False)
    with pytest.raises(ArgumentError):
        AG_NEWS(tmp_path, split="valid")


def test_imdb_download_extract_parse_cache(server, monkeypatch, forbid, tmp_path):
    members = {
        "aclImdb/train/neg/10_2.txt": "Bad <br />film.", "aclImdb/train/neg/2_1.txt": "Awful.",
        "aclImdb/train/pos/5_9.txt": "Gréat!", "aclImdb/train/unsup/0_0.txt": "unlabelled",
        "aclImdb/test/neg/1_3.txt": "Meh.", "aclImdb/test/pos/1_10.txt": "Loved it.",
        "aclImdb/README": "readme",
    }
    paths = serve(server, monkeypatch, imdb_mod,
                  {"aclImdb_v1.tar.gz": tar_gz({k: v.encode() for k, v in members.items()})})
    train = IMDB(tmp_path, split="train")
    assert list(train) == [(1, "Awful."), (1, "Bad <br />film."), (2, "Gréat!")]
    assert train.labels.dtype == np.int64
    forbid("hubkit.datasets._files.extract")
    assert list(IMDB(tmp_path, split="test")) == [(1, "Meh."), (2, "Loved it.")]  # same extraction
    forbid("hubkit.datasets.text.imdb.read_imdb_split")
    train, test = IMDB(tmp_path)
    assert list(test) == [(1, "Meh."), (2, "Loved it.")]
    assert train[-1] == (2, "Gréat!")
    assert server.count(paths["aclImdb_v1.tar.gz"]) == 1
