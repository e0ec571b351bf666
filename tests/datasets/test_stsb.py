"""STSB: sentence-transformers' stsbenchmark.tsv.gz, which has no published checksum (pinned at first download)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from dsfiles import total_gets

from hubkit.datasets import STSB
from hubkit.datasets._files import resource_filename
from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError
from hubkit.hub import Resource
from hubkit.hub.transport.cache import read_record

HEADER = "split\tgenre\tdataset\tyear\tsid\tscore\tsentence1\tsentence2\n"
ROWS = [
    ("train", "main-captions", "MSRvid", "2012test", "0001", "5.000", "A plane is taking off.",
     "An air plane is taking off."),
    ("train", "main-news", "headlines", "2013", "0007", "0.600", 'He said "no" twice.', "Ünïcode café, 'quoted'."),
    ("dev", "main-forums", "answers-forums", "2015", "0012", "2.750", "A man is playing a flute.",
     "A man plays the bamboo flute."),
    ("test", "main-captions", "images", "2014", "0002", "4.200", "A girl is styling her hair.",
     "A girl is brushing her hair."),
    ("test", "main-captions", "images", "2014", "0003", "0.000", "A dog runs.", "Stocks fell sharply."),
]


def tsv_gz(rows=ROWS, header=HEADER) -> bytes:
    return gzip.compress((header + "".join("\t".join(r) + "\n" for r in rows)).encode("utf-8"), mtime=0)


def serve_unhashed(server, monkeypatch, data: bytes) -> str:
    """Serve the TSV with no checksum at all, as the real resource is declared."""
    path = "/stsb/stsbenchmark.tsv.gz"
    monkeypatch.setattr(STSB, "resources", (Resource(url=server.add(path, data)),))
    return path


def test_the_real_resource_is_declared_unverified():
    (res,) = STSB.resources
    assert res.url == "https://sbert.net/datasets/stsbenchmark.tsv.gz"
    assert not (res.md5 or res.sha256 or res.sha256_prefix)
    assert STSB.unverified_files == (resource_filename(res),)


def test_download_parse_splits_and_cache(server, monkeypatch, forbid, tmp_path):
    data = tsv_gz()
    path = serve_unhashed(server, monkeypatch, data)
    test = STSB(tmp_path, download=True)  # split="test" by default
    assert list(test) == [("A girl is styling her hair.", "A girl is brushing her hair.", 4.2 / 5.0),
                          ("A dog runs.", "Stocks fell sharply.", 0.0)]
    np.testing.assert_allclose(test.scores, [0.84, 0.0])
    raw = tmp_path / "STSB" / "stsbenchmark.tsv.gz"
    assert read_record(raw).sha256 == __import__("hashlib").sha256(data).hexdigest()  # recorded at first download

    train = STSB(tmp_path, split="train", download=True)
    assert train[1] == ('He said "no" twice.', "Ünïcode café, 'quoted'.", 0.6 / 5.0)  # QUOTE_NONE keeps quotes
    assert train[-2][2] == 1.0
    validation = STSB(tmp_path, split="validation")
    assert list(validation) == [("A man is playing a flute.", "A man plays the bamboo flute.", 2.75 / 5.0)]
    assert list(STSB(tmp_path, split="dev")) == list(validation)
    assert server.count(path) == 1

    forbid("hubkit.datasets.text.stsb.read_stsb_tsv", "hubkit.hub.transport.verify.hash_file")
    before = total_gets(server)
    assert STSB(tmp_path, split="train")[0][0] == "A plane is taking off."
    assert total_gets(server) == before


def test_a_changed_file_is_caught_by_the_recorded_sha256(server, monkeypatch, tmp_path):
    data = tsv_gz()
    path = serve_unhashed(server, monkeypatch, data)
    STSB(tmp_path, download=True)
    raw = tmp_path / "STSB" / "stsbenchmark.tsv.gz"
    raw.write_bytes(tsv_gz(ROWS[:-1] + [ROWS[-1][:5] + ("5.000",) + ROWS[-1][6:]]))  # a score altered
    with pytest.raises(DatasetError, match="sha256"):
        STSB(tmp_path)
    fixed = STSB(tmp_path, download=True)  # fetched again and checked against the first download
    assert fixed[1][2] == 0.0 and server.count(path) == 2 and raw.read_bytes() == data


def test_a_file_put_in_place_by_hand_is_used_as_is(forbid, tmp_path):
    folder = tmp_path / "STSB"
    folder.mkdir()
    raw = folder / "stsbenchmark.tsv.gz"
    raw.write_bytes(tsv_gz())
    forbid("hubkit.datasets._files.fetch")
    assert len(STSB(tmp_path, split="train")) == 2
    assert read_record(raw) is None  # nothing downloaded, nothing pinned: replacing it by hand stays possible
    raw.write_bytes(tsv_gz(ROWS[:1]))
    assert len(STSB(tmp_path, split="train")) == 1


def test_missing_bad_split_and_damaged_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="stsbenchmark.tsv.gz"):
        STSB(tmp_path)
    with pytest.raises(ArgumentError, match="validation"):
        STSB(tmp_path, split="valid")
    raw = tmp_path / "STSB" / "stsbenchmark.tsv.gz"
    raw.parent.mkdir(exist_ok=True)  # the failed construction above may have made it (for its lock)
    raw.write_bytes(tsv_gz(header="split\tgenre\tdataset\tyear\tsid\tscore\tsentence1\n"))
    with pytest.raises(DatasetError, match="lacks the column.*sentence2"):
        STSB(tmp_path)
    raw.unlink()
    raw.write_bytes(tsv_gz()[:-20])
    with pytest.raises(DatasetError, match="not a complete gzip file"):
        STSB(tmp_path)
    raw.unlink()
    raw.write_bytes(tsv_gz(ROWS + [("test", "x", "y", "2014", "9", "high", "a", "b")]))
    with pytest.raises(DatasetError, match="score 'high' is not a number"):
        STSB(tmp_path)
