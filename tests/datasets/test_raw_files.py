"""Raw files a user owns: never deleted or overwritten, checked the same way in every form they take.

MNIST stands for every dataset here: its raw files come as the downloaded ``.gz``, as torchvision's
decompressed copies, or re-compressed by hand, and the checks must treat each form by what it holds.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dsfiles import gz, idx_bytes, md5, serve, tar_gz, total_gets

from hubkit.datasets import KMNIST, MNIST, FashionMNIST
from hubkit.datasets._files import RawFile, archive_members
from hubkit.datasets.vision.mnist import read_idx
from hubkit.errors import DatasetError
from hubkit.hub import Resource
from hubkit.hub.transport.verify import Expect

FILES = Path(__file__).parent / "files"
RAW = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
       "t10k-labels-idx1-ubyte.gz")


def payloads(seed: int = 0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 6).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3).astype(np.uint8),
    }
    return {name + ".gz": gz(idx_bytes(a)) for name, a in arrays.items()}, arrays


def put(raw: Path, files: dict[str, bytes]) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (raw / name).write_bytes(data)


# ---------------------------------------------------------------- item 1: never delete what the user owns


def test_download_offline_leaves_a_mismatched_raw_file_where_it_was(server, monkeypatch, tmp_path):
    files, _ = payloads()
    serve(server, monkeypatch, MNIST, files)
    raw = tmp_path / "MNIST" / "raw"
    put(raw, {n: files[n] for n in RAW[1:]})
    mine = raw / RAW[0]
    mine.write_bytes(b"the user's own notes, saved under this name")
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")
    with pytest.raises(DatasetError) as info:
        MNIST(tmp_path, download=True)
    assert mine.read_bytes() == b"the user's own notes, saved under this name"
    msg = str(info.value)
    assert str(mine) in msg and "left in place" in msg and "HUBKIT_OFFLINE" in msg
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == sorted(RAW)


def test_download_moves_a_mismatched_raw_file_aside_and_says_where(server, monkeypatch, tmp_path, caplog):
    files, arrays = payloads()
    paths = serve(server, monkeypatch, MNIST, files)
    raw = tmp_path / "MNIST" / "raw"
    put(raw, {n: files[n] for n in RAW[1:]})
    (raw / RAW[0]).write_bytes(b"mine")
    with caplog.at_level(logging.WARNING, logger="hubkit.datasets"):
        ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data, arrays["train-images-idx3-ubyte"])
    aside = [p for p in raw.iterdir() if p.name.startswith(RAW[0] + ".hubkit-mismatch-")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"mine"
    assert (raw / RAW[0]).read_bytes() == files[RAW[0]] and server.count(paths[RAW[0]]) == 1
    assert any(str(aside[0]) in r.getMessage() for r in caplog.records)


def test_without_download_a_mismatched_raw_file_is_reported_and_untouched(server, monkeypatch, tmp_path):
    files, _ = payloads()
    serve(server, monkeypatch, MNIST, files)
    raw = tmp_path / "MNIST" / "raw"
    put(raw, files)
    (raw / RAW[2]).write_bytes(b"not the archive")
    with pytest.raises(DatasetError, match="md5") as info:
        MNIST(tmp_path, train=False)
    assert (raw / RAW[2]).read_bytes() == b"not the archive" and "left in place" in str(info.value)
    assert total_gets(server) == 0


def test_a_failed_replacement_download_puts_the_users_file_back(server, monkeypatch, tmp_path):
    files, _ = payloads()
    serve(server, monkeypatch, MNIST, {n: files[n] for n in RAW[1:]})  # RAW[0] answers 404
    raw = tmp_path / "MNIST" / "raw"
    put(raw, {n: files[n] for n in RAW[1:]})
    (raw / RAW[0]).write_bytes(b"mine")
    with pytest.raises(DatasetError, match="left in place"):
        MNIST(tmp_path, download=True)
    assert (raw / RAW[0]).read_bytes() == b"mine"
    assert not [p for p in raw.iterdir() if "hubkit-mismatch" in p.name]


def test_a_damaged_extracted_file_is_kept_aside_when_its_archive_is_extracted_again(tmp_path):
    members = {"tree/a.bin": b"a" * 10, "tree/b.bin": b"b" * 10}
    archive = tmp_path / "tree.tar.gz"
    archive.write_bytes(tar_gz(members))
    raw = RawFile(Resource(url="https://example.org/tree.tar.gz", md5=md5(archive.read_bytes())), tmp_path)
    spec = [(tmp_path / name, md5(data)) for name, data in members.items()]
    archive_members("T", raw, tmp_path, spec, download=False)
    (tmp_path / "tree" / "a.bin").write_bytes(b"my edit")
    assert archive_members("T", raw, tmp_path, spec, download=False) == [p for p, _ in spec]
    assert (tmp_path / "tree" / "a.bin").read_bytes() == b"a" * 10
    (kept,) = (tmp_path / "tree").glob("a.bin.hubkit-mismatch-*")
    assert kept.read_bytes() == b"my edit"


# ---------------------------------------------------------------- item 8: every form checked by its content


def test_recorded_content_digests_are_those_of_the_upstream_files():
    upstream = (FILES / "t10k-labels-idx1-ubyte.gz").read_bytes()  # byte-identical to LeCun's file
    res = {r.filename or r.url.rsplit("/", 1)[1]: r for r in MNIST.resources}["t10k-labels-idx1-ubyte.gz"]
    assert hashlib.md5(upstream).hexdigest() == res.md5 and len(upstream) == res.size
    content = MNIST.decompressed["t10k-labels-idx1-ubyte.gz"]
    plain = gzip.decompress(upstream)
    assert (hashlib.sha256(plain).hexdigest(), len(plain)) == (content.sha256, content.size)
    assert set(MNIST.decompressed) == {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert FashionMNIST.decompressed == {} and KMNIST.decompressed == {}  # not inherited from MNIST


def test_a_recompressed_gz_is_accepted_by_what_it_holds(server, monkeypatch, forbid, tmp_path):
    files, arrays = payloads()
    serve(server, monkeypatch, MNIST, files)  # also records the payloads' decompressed digests
    raw = tmp_path / "MNIST" / "raw"
    # what `gunzip *.gz && gzip -9 *` leaves: same contents, other bytes, so other md5s
    put(raw, {n: gzip.compress(gzip.decompress(files[n]), compresslevel=9, mtime=12345) for n in RAW})
    forbid("hubkit.datasets._files.fetch")
    test = MNIST(tmp_path, train=False)
    np.testing.assert_array_equal(test.data, arrays["t10k-images-idx3-ubyte"])
    train = MNIST(tmp_path, train=True)  # no recorded content: its IDX structure is what is checked
    np.testing.assert_array_equal(train.targets, arrays["train-labels-idx1-ubyte"])


def test_a_decompressed_file_with_other_contents_is_refused(server, monkeypatch, tmp_path):
    files, arrays = payloads()
    serve(server, monkeypatch, MNIST, files)
    raw = tmp_path / "MNIST" / "raw"
    labels = arrays["t10k-labels-idx1-ubyte"].copy()
    labels[0] = (labels[0] + 1) % 10  # one label changed: a valid IDX file, not MNIST's
    put(raw, {"t10k-images-idx3-ubyte": idx_bytes(arrays["t10k-images-idx3-ubyte"]),
              "t10k-labels-idx1-ubyte": idx_bytes(labels)})
    with pytest.raises(DatasetError, match="sha256") as info:
        MNIST(tmp_path, train=False)
    assert str(raw / "t10k-labels-idx1-ubyte") in str(info.value)
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == idx_bytes(labels)


def test_the_upstream_labels_pass_in_every_form(monkeypatch, tmp_path):
    upstream = (FILES / "t10k-labels-idx1-ubyte.gz").read_bytes()
    labels = read_idx(FILES / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels[:5].tolist() == [7, 2, 1, 0, 4]  # the first digits of the set
    images = np.zeros((10000, 28, 28), np.uint8)
    # the upstream images are not in the repository: record the digest of the stand-in the test writes
    stand_in = idx_bytes(images)
    monkeypatch.setitem(MNIST.decompressed, "t10k-images-idx3-ubyte.gz",
                        Expect.of(sha256=hashlib.sha256(stand_in).hexdigest(), size=len(stand_in)))
    for form, data in (("t10k-labels-idx1-ubyte.gz", upstream),
                       ("t10k-labels-idx1-ubyte.gz", gzip.compress(gzip.decompress(upstream), mtime=1)),
                       ("t10k-labels-idx1-ubyte", gzip.decompress(upstream))):
        root = tmp_path / f"{form}-{len(data)}"
        put(root / "MNIST" / "raw", {form: data, "t10k-images-idx3-ubyte": idx_bytes(images)})
        np.testing.assert_array_equal(MNIST(root, train=False).targets, labels)


# ---------------------------------------------------------------- item 4: an IDX header bounded by its file


def _idx_header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_dims_whose_product_overflows_int64_are_a_dataset_error(tmp_path):
    path = tmp_path / "overflow-idx4-ubyte"
    path.write_bytes(_idx_header(8, (1 << 16,) * 4))  # 2**64 elements: 0 in int64 arithmetic
    with pytest.raises(DatasetError, match=str(path)) as info:
        read_idx(path)
    assert "18446744073709551616" in str(info.value)


def test_an_image_file_claiming_a_billion_images_is_refused_with_the_expected_shape(tmp_path):
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.parent.mkdir(parents=True)
    path.write_bytes(_idx_header(8, (10**9, 28, 28)) + bytes(784))
    (path.parent / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(1, np.uint8)))
    with pytest.raises(DatasetError) as info:
        MNIST(tmp_path)
    msg = str(info.value)
    assert str(path) in msg and "1000000000" in msg and "(N, 28, 28)" in msg


def test_a_gzip_bomb_behind_an_idx_header_is_refused_before_it_is_inflated(tmp_path):
    """A 2 MiB .gz that inflates to 2 GiB under a header claiming 10**9 images, read with 1 GiB of address
    space to spare: refused from the header and the file's size, never inflated."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)  # 1 MiB of zeros in ~1 KiB
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(_idx_header(8, (10**9, 28, 28)), mtime=0) + member * 2048)
    code = (
        "import resource, sys\n"
        "from hubkit.datasets.vision.mnist import read_idx\n"
        "from hubkit.errors import DatasetError\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
        "import numpy\n"
        "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), hard))\n"
        "try:\n"
        f"    read_idx({str(bomb)!r})\n"
        "except DatasetError as e:\n"
        "    print('REFUSED', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("REFUSED"), out.stderr[-2000:]
    assert str(bomb) in out.stdout and "1000000000" in out.stdout


def test_a_gz_inflating_past_its_header_is_cut_off(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gz(_idx_header(8, (4,)) + bytes(4 + 100_000)))
    with pytest.raises(DatasetError, match="more than its header"):
        read_idx(path)
