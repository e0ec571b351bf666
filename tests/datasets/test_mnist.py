"""MNIST family: IDX files served locally, downloaded, decoded, cached and memory-mapped."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from dsfiles import gz, idx_bytes, serve, total_gets, xz, zip_bytes

from hubkit.datasets import EMNIST, KMNIST, MNIST, QMNIST, FashionMNIST
from hubkit.datasets.vision.mnist import read_idx
from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError

PARSER = "hubkit.datasets.vision.mnist.read_idx"
HASHER = "hubkit.hub.transport.verify.hash_file"


def make_split(n: int, seed: int, hw: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, hw, hw), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def mnist_payloads(train=(7, 1), test=(5, 2)) -> tuple[dict[str, bytes], dict]:
    (xtr, ytr), (xte, yte) = make_split(*train), make_split(*test)
    payloads = {
        "train-images-idx3-ubyte.gz": gz(idx_bytes(xtr)),
        "train-labels-idx1-ubyte.gz": gz(idx_bytes(ytr)),
        "t10k-images-idx3-ubyte.gz": gz(idx_bytes(xte)),
        "t10k-labels-idx1-ubyte.gz": gz(idx_bytes(yte)),
    }
    return payloads, {"train": (xtr, ytr), "test": (xte, yte)}


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST, KMNIST])
def test_download_decode_then_cached_construction_touches_nothing(cls, server, monkeypatch, forbid, tmp_path):
    payloads, truth = mnist_payloads()
    paths = serve(server, monkeypatch, cls, payloads)
    ds = cls(tmp_path, train=True, download=True)
    x, y = truth["train"]
    assert len(ds) == 7
    img, target = ds[3]
    assert img.shape == (28, 28) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, x[3])
    assert img[0, 0] == x[3, 0, 0] and img[27, 13] == x[3, 27, 13]
    assert target == int(y[3]) and isinstance(target, int)
    assert ds.data.shape == (7, 28, 28) and ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.targets, y)
    assert ds.classes == cls.classes and ds.class_to_idx[cls.classes[4]] == 4
    # every file was fetched once, as torchvision's download() does, so the test split needs no download=True
    assert server.count(paths["train-images-idx3-ubyte.gz"]) == 1
    assert server.count(paths["t10k-images-idx3-ubyte.gz"]) == 1
    assert len(cls(tmp_path, train=False)) == 5
    assert (tmp_path / cls.__name__ / "raw" / "train-images-idx3-ubyte.gz").is_file()

    before = total_gets(server)
    forbid(PARSER, HASHER)
    again = cls(tmp_path, train=True, download=True)
    assert total_gets(server) == before
    assert isinstance(again.data, np.memmap)
    np.testing.assert_array_equal(again[6][0], x[6])


def test_test_split_and_transforms(server, monkeypatch, tmp_path):
    payloads, truth = mnist_payloads()
    serve(server, monkeypatch, MNIST, payloads)
    ds = MNIST(tmp_path, train=False, download=True, transform=lambda a: a.astype(np.float32) / 255,
               target_transform=lambda t: t + 100)
    x, y = truth["test"]
    img, target = ds[-1]
    assert img.dtype == np.float32
    np.testing.assert_allclose(img, x[-1] / 255, rtol=1e-6)
    assert target == int(y[-1]) + 100
    assert "Split: Test" in repr(ds) and "Number of datapoints: 5" in repr(ds)


def test_items_are_writable_copies_not_views_of_the_cache(server, monkeypatch, tmp_path):
    payloads, truth = mnist_payloads()
    serve(server, monkeypatch, MNIST, payloads)
    ds = MNIST(tmp_path, download=True)
    img, _ = ds[0]
    img[:] = 0
    np.testing.assert_array_equal(ds[0][0], truth["train"][0][0])


def test_root_none_uses_hubkit_home(server, monkeypatch, _isolated_hubkit_home):
    payloads, _ = mnist_payloads()
    serve(server, monkeypatch, MNIST, payloads)
    ds = MNIST(download=True)
    assert ds.root == _isolated_hubkit_home / "datasets"
    assert (_isolated_hubkit_home / "datasets" / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").is_file()


def test_existing_torchvision_tree_is_used_without_download(server, monkeypatch, tmp_path):
    """torchvision keeps the decompressed files in root/MNIST/raw; they are read as they are."""
    payloads, truth = mnist_payloads()
    paths = serve(server, monkeypatch, MNIST, payloads)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    x, y = truth["test"]
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(x))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    ds = MNIST(tmp_path, train=False)
    np.testing.assert_array_equal(ds.data, x)
    ds = MNIST(tmp_path, train=False, download=True)
    assert all(server.count(p) == 0 for p in paths.values())


def test_missing_data_says_download_or_where_to_put_which_file(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(tmp_path, train=True)
    msg = str(info.value)
    assert "download=True" in msg
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz") in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz" in msg
    assert "d53e105ee54ea40749a09fcbcd1e9432" in msg


def test_truncated_decompressed_file_is_reported_not_used(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    x, y = make_split(4, 0)
    (raw / "train-images-idx3-ubyte").write_bytes(idx_bytes(x)[:-100])
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    with pytest.raises(DatasetError, match="truncated"):
        MNIST(tmp_path)


def test_corrupted_download_on_disk_is_refetched_with_download_true(server, monkeypatch, tmp_path):
    payloads, truth = mnist_payloads()
    paths = serve(server, monkeypatch, MNIST, payloads)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="md5"):
        MNIST(tmp_path)
    ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data, truth["train"][0])
    assert server.count(paths["train-images-idx3-ubyte.gz"]) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_cache_is_detected_and_rederived(damage, server, monkeypatch, tmp_path, caplog):
    payloads, truth = mnist_payloads()
    serve(server, monkeypatch, MNIST, payloads)
    MNIST(tmp_path, download=True)
    npy = tmp_path / "MNIST" / "hubkit-cache" / "train.data.npy"
    blob = bytearray(npy.read_bytes())
    if damage == "truncate":
        npy.write_bytes(bytes(blob[:-50]))
    else:
        blob[-1] ^= 0xFF
        npy.write_bytes(bytes(blob))
    before = total_gets(server)
    ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data, truth["train"][0])
    assert total_gets(server) == before  # re-derived from the raw files, not downloaded again
    assert any("re-deriv" in r.getMessage() for r in caplog.records)


def test_damaged_cache_without_raw_files_is_an_error_not_silent_data(server, monkeypatch, tmp_path):
    payloads, _ = mnist_payloads()
    serve(server, monkeypatch, MNIST, payloads)
    MNIST(tmp_path, download=True)
    for p in (tmp_path / "MNIST" / "raw").iterdir():
        p.unlink()
    npy = tmp_path / "MNIST" / "hubkit-cache" / "train.targets.npy"
    blob = bytearray(npy.read_bytes())
    blob[-1] ^= 0x01
    npy.write_bytes(bytes(blob))
    with pytest.raises(DatasetNotFoundError):
        MNIST(tmp_path)


def test_first_mirror_404_falls_through_to_second(server, monkeypatch, tmp_path):
    payloads, truth = mnist_payloads()
    paths = serve(server, monkeypatch, MNIST, payloads)
    monkeypatch.setattr(MNIST, "resources", tuple(
        r.__class__(**{**r.__dict__, "url": server.url("/dead/" + r.filename), "mirrors": (r.url,)})
        for r in MNIST.resources
    ))
    ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data, truth["train"][0])
    assert server.count("/dead/train-images-idx3-ubyte.gz") == 1
    assert server.count(paths["train-images-idx3-ubyte.gz"]) == 1


def test_first_mirror_with_wrong_bytes_falls_through_to_second(server, monkeypatch, tmp_path):
    payloads, truth = mnist_payloads()
    paths = serve(server, monkeypatch, MNIST, payloads)
    bad = {}
    for r in MNIST.resources:
        bad[r.filename] = server.add("/bad/" + r.filename, gz(b"not the file you want"))
    monkeypatch.setattr(MNIST, "resources", tuple(
        r.__class__(**{**r.__dict__, "url": bad[r.filename], "mirrors": (r.url,)}) for r in MNIST.resources
    ))
    ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.targets, truth["train"][1])
    assert server.count("/bad/train-labels-idx1-ubyte.gz") >= 1
    assert server.count(paths["train-labels-idx1-ubyte.gz"]) == 1


def test_read_idx_multibyte_big_endian_and_bad_header(tmp_path):
    arr = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000003
    p = tmp_path / "labels-idx2-int"
    p.write_bytes(idx_bytes(arr))
    out = read_idx(p)
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    (tmp_path / "x.xz").write_bytes(xz(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(tmp_path / "x.xz"), arr)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "cut.gz").write_bytes(gz(idx_bytes(arr))[:-10])
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        read_idx(tmp_path / "cut.gz")


# ---------------------------------------------------------------- EMNIST


def emnist_zip(splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> bytes:
    members = {}
    for split, (xtr, ytr, xte, yte) in splits.items():
        for part, x, y in (("train", xtr, ytr), ("test", xte, yte)):
            members[f"gzip/emnist-{split}-{part}-images-idx3-ubyte.gz"] = gz(idx_bytes(x))
            members[f"gzip/emnist-{split}-{part}-labels-idx1-ubyte.gz"] = gz(idx_bytes(y))
    return zip_bytes(members)


@pytest.mark.parametrize("split", EMNIST.splits)
def test_emnist_every_split(split, server, monkeypatch, forbid, tmp_path):
    data = {s: (*make_split(6, i), *make_split(3, 10 + i)) for i, s in enumerate(EMNIST.splits)}
    paths = serve(server, monkeypatch, EMNIST, {"gzip.zip": emnist_zip(data)})
    ds = EMNIST(tmp_path, split=split, train=False, download=True)
    _, _, xte, yte = data[split]
    assert len(ds) == 3
    np.testing.assert_array_equal(ds[2][0], xte[2])
    assert ds[2][1] == int(yte[2])
    assert ds.classes == EMNIST.classes_split_dict[split]
    assert server.count(paths["gzip.zip"]) == 1
    forbid(PARSER, "hubkit.datasets._files.extract")
    assert EMNIST(tmp_path, split=split, train=False, download=True)[1][1] == int(yte[1])
    assert server.count(paths["gzip.zip"]) == 1


def test_emnist_class_lists_and_bad_split(tmp_path):
    assert EMNIST.classes_split_dict["byclass"][:11] == [*"0123456789", "A"]
    assert len(EMNIST.classes_split_dict["byclass"]) == 62
    assert len(EMNIST.classes_split_dict["balanced"]) == 47
    assert EMNIST.classes_split_dict["letters"][:3] == ["N/A", "a", "b"]
    with pytest.raises(ArgumentError, match="byclass"):
        EMNIST(tmp_path, split="bogus")
    with pytest.raises(ArgumentError):
        EMNIST(tmp_path)


def test_emnist_torchvision_tree(tmp_path):
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    x, y = make_split(4, 3)
    (raw / "emnist-letters-train-images-idx3-ubyte").write_bytes(idx_bytes(x))
    (raw / "emnist-letters-train-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    ds = EMNIST(tmp_path, split="letters")
    np.testing.assert_array_equal(ds.data, x)


# ---------------------------------------------------------------- QMNIST


def qmnist_payloads():
    rng = np.random.default_rng(5)
    out, truth = {}, {}
    for group, n, comp, prefix in (("train", 6, gz, "qmnist-train-"), ("test", 12, gz, "qmnist-test-"),
                                   ("nist", 4, xz, "xnist-")):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 1000, (n, 8), dtype=np.int32)
        ext = ".gz" if comp is gz else ".xz"
        out[f"{prefix}images-idx3-ubyte{ext}"] = comp(idx_bytes(x))
        out[f"{prefix}labels-idx2-int{ext}"] = comp(idx_bytes(y))
        truth[group] = (x, y)
    return out, truth


@pytest.mark.parametrize("what", ["train", "test", "nist"])
def test_qmnist_train_test_nist(what, server, monkeypatch, forbid, tmp_path):
    payloads, truth = qmnist_payloads()
    paths = serve(server, monkeypatch, QMNIST, payloads)
    ds = QMNIST(tmp_path, what=what, download=True)
    x, y = truth[QMNIST.subsets[what]]
    assert len(ds) == len(x)
    np.testing.assert_array_equal(ds[1][0], x[1])
    assert ds[1][1] == int(y[1, 0])
    assert ds.targets.shape == (len(x), 8) and ds.targets.dtype == np.int64
    before = {p: server.count(p) for p in paths.values()}
    forbid(PARSER)
    full = QMNIST(tmp_path, what=what, compat=False)
    np.testing.assert_array_equal(full[1][1], y[1].astype(np.int64))
    assert {p: server.count(p) for p in paths.values()} == before


def test_qmnist_test10k_test50k_slices(server, monkeypatch, tmp_path):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (10003, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, (10003, 8), dtype=np.int32)
    payloads = {"qmnist-test-images-idx3-ubyte.gz": gz(idx_bytes(x)),
                "qmnist-test-labels-idx2-int.gz": gz(idx_bytes(y))}
    serve(server, monkeypatch, QMNIST, payloads)
    first = QMNIST(tmp_path, what="test10k", download=True)
    rest = QMNIST(tmp_path, what="test50k", download=True)
    assert len(first) == 10000 and len(rest) == 3
    np.testing.assert_array_equal(rest[0][0], x[10000])
    assert rest[2][1] == int(y[10002, 0])
    assert QMNIST(tmp_path, train=False).what == "test"


def test_qmnist_bad_what(tmp_path):
    with pytest.raises(ArgumentError, match="test50k"):
        QMNIST(tmp_path, what="valid")


@pytest.mark.parity
def test_matches_torchvision_mnist(server, monkeypatch, tmp_path):
    import torchvision

    payloads, _ = mnist_payloads(train=(50, 3))
    serve(server, monkeypatch, MNIST, payloads)
    ours = MNIST(tmp_path, download=True)
    raw = tmp_path / "MNIST" / "raw"
    for name, data in payloads.items():  # torchvision reads the decompressed copies of all four files
        (raw / name.removesuffix(".gz")).write_bytes(gzip.decompress(data))
    theirs = torchvision.datasets.MNIST(tmp_path, train=True)
    np.testing.assert_array_equal(ours.data, theirs.data.numpy())
    np.testing.assert_array_equal(ours.targets, theirs.targets.numpy())
    for i in (0, 17, 49):
        np.testing.assert_array_equal(ours[i][0], np.asarray(theirs[i][0]))
        assert ours[i][1] == theirs[i][1]
