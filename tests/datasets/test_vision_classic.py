"""CIFAR10/100, SVHN, STL10, USPS and SEMEION: upstream formats served locally, decoded, cached."""

from __future__ import annotations

import numpy as np
import pytest
from dsfiles import bz2_bytes, cifar_batch, serve, tar_gz, total_gets

from hubkit.datasets import CIFAR10, CIFAR100, SEMEION, STL10, SVHN, USPS
from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError

HASHER = "hubkit.hub.transport.verify.hash_file"

# ---------------------------------------------------------------- CIFAR


def cifar10_archive(per_batch: int = 3):
    rng = np.random.default_rng(0)
    members, xs, ys = {}, [], []
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch).tolist()
        members[f"cifar-10-batches-py/{name}"] = cifar_batch(x, y)
        xs.append(x)
        ys.append(y)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    members["cifar-10-batches-py/batches.meta"] = __import__("pickle").dumps(
        {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, protocol=2)
    return members, xs, ys, names


def patch_member_md5s(monkeypatch, cls, members, folder):
    from dsfiles import md5

    monkeypatch.setattr(cls, "train_list", [[n, md5(members[f"{folder}/{n}"])] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5(members[f"{folder}/{n}"])] for n, _ in cls.test_list])
    meta = dict(cls.meta, md5=md5(members[f"{folder}/{cls.meta['filename']}"]))
    monkeypatch.setattr(cls, "meta", meta)


def test_cifar10_download_decode_cache(server, monkeypatch, forbid, tmp_path):
    members, xs, ys, names = cifar10_archive()
    patch_member_md5s(monkeypatch, CIFAR10, members, "cifar-10-batches-py")
    paths = serve(server, monkeypatch, CIFAR10, {"cifar-10-python.tar.gz": tar_gz(members)})
    ds = CIFAR10(tmp_path, train=True, download=True)
    assert len(ds) == 15 and ds.data.shape == (15, 32, 32, 3) and ds.data.dtype == np.uint8
    img, target = ds[4]  # second batch, second row
    chw = xs[1][1].reshape(3, 32, 32)
    np.testing.assert_array_equal(img, chw.transpose(1, 2, 0))
    assert img[0, 0, 0] == chw[0, 0, 0] and img[31, 5, 2] == chw[2, 31, 5]
    assert target == ys[1][1] and isinstance(ds.targets, list)
    assert ds.classes == names and ds.class_to_idx["cat"] == 3
    test = CIFAR10(tmp_path, train=False, download=True)
    np.testing.assert_array_equal(test[2][0], xs[5][2].reshape(3, 32, 32).transpose(1, 2, 0))
    assert server.count(paths["cifar-10-python.tar.gz"]) == 1

    forbid("hubkit.datasets.vision.cifar.load_pickle", "hubkit.datasets._files.extract", HASHER)
    before = total_gets(server)
    again = CIFAR10(tmp_path, train=True, download=True)
    assert again.targets == ds.targets and again.classes == names
    assert total_gets(server) == before


def test_cifar10_extracted_tree_without_archive_and_corrupted_member(monkeypatch, tmp_path):
    members, xs, _, _ = cifar10_archive()
    patch_member_md5s(monkeypatch, CIFAR10, members, "cifar-10-batches-py")
    for name, data in members.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    ds = CIFAR10(tmp_path, train=False)  # a torchvision tree: used as it is
    np.testing.assert_array_equal(ds.data[0], xs[5][0].reshape(3, 32, 32).transpose(1, 2, 0))

    corrupt = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DatasetError, match="md5"):
        CIFAR10(tmp_path, train=True)


def test_cifar_missing_names_archive_and_extracted_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR100(tmp_path)
    msg = str(info.value)
    assert "cifar-100-python.tar.gz" in msg and "download=True" in msg and "eb9058c3a382ffc7106e4002c42a8d85" in msg


def test_cifar100_fine_labels(server, monkeypatch, tmp_path):
    rng = np.random.default_rng(1)
    x_train, x_test = (rng.integers(0, 256, (n, 3072), dtype=np.uint8) for n in (4, 2))
    y_train = [5, 99, 0, 42]
    members = {
        "cifar-100-python/train": cifar_batch(x_train, y_train, key="fine_labels"),
        "cifar-100-python/test": cifar_batch(x_test, [1, 2], key="fine_labels"),
        "cifar-100-python/meta": __import__("pickle").dumps(
            {"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": []}, protocol=2),
    }
    patch_member_md5s(monkeypatch, CIFAR100, members, "cifar-100-python")
    serve(server, monkeypatch, CIFAR100, {"cifar-100-python.tar.gz": tar_gz(members)})
    ds = CIFAR100(tmp_path, download=True)
    assert ds.targets == y_train and len(ds.classes) == 100 and ds.classes[99] == "c99"
    np.testing.assert_array_equal(ds[3][0], x_train[3].reshape(3, 32, 32).transpose(1, 2, 0))


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path):
    import pickle

    from hubkit.datasets.vision.cifar import load_pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "batch"
    p.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(DatasetError, match="not allowed"):
        load_pickle(p)


# ---------------------------------------------------------------- SVHN


def svhn_mat(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    import io

    import scipy.io

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
    y[0, 0] = 10
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"X": x, "y": y})
    return buf.getvalue(), x, y


@pytest.mark.parametrize("split", ["train", "test", "extra"])
def test_svhn_every_split(split, server, monkeypatch, forbid, tmp_path):
    data, x, y = svhn_mat(5, 3)
    paths = serve(server, monkeypatch, SVHN, {f"{split}_32x32.mat": data})
    ds = SVHN(tmp_path, split=split, download=True)
    assert len(ds) == 5 and ds.data.shape == (5, 3, 32, 32) and ds.labels.dtype == np.int64
    img, target = ds[2]
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, x[:, :, :, 2])
    assert img[7, 9, 1] == x[7, 9, 1, 2]
    assert target == int(y[2, 0]) % 10 and ds[0][1] == 0  # label 10 is the digit 0
    assert (tmp_path / f"{split}_32x32.mat").is_file()
    forbid("hubkit.datasets.vision.svhn.read_svhn_mat", HASHER)
    assert SVHN(tmp_path, split=split, download=True)[2][1] == target
    assert server.count(paths[f"{split}_32x32.mat"]) == 1


def test_svhn_without_scipy_says_what_to_install(server, monkeypatch, tmp_path):
    import sys

    from hubkit.errors import MissingDependencyError

    data, _, _ = svhn_mat(2, 0)
    serve(server, monkeypatch, SVHN, {"test_32x32.mat": data})
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(MissingDependencyError, match=r"hubkit\[scipy\]"):
        SVHN(tmp_path, split="test", download=True)


def test_svhn_bad_split(tmp_path):
    with pytest.raises(ArgumentError, match="extra"):
        SVHN(tmp_path, split="validation")


# ---------------------------------------------------------------- STL10


def stl10_archive():
    rng = np.random.default_rng(4)
    x_train = rng.integers(0, 256, (6, 3, 96, 96), dtype=np.uint8)
    x_test = rng.integers(0, 256, (3, 3, 96, 96), dtype=np.uint8)
    x_unl = rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    y_train = np.array([1, 2, 3, 10, 5, 6], np.uint8)
    y_test = np.array([4, 4, 9], np.uint8)
    folds = "\n".join(" ".join(map(str, f)) for f in ([0, 2], [1, 3, 5], [4], [0], [1], [2], [3], [4], [5], [0]))
    members = {
        "stl10_binary/train_X.bin": x_train.tobytes(), "stl10_binary/train_y.bin": y_train.tobytes(),
        "stl10_binary/test_X.bin": x_test.tobytes(), "stl10_binary/test_y.bin": y_test.tobytes(),
        "stl10_binary/unlabeled_X.bin": x_unl.tobytes(),
        "stl10_binary/class_names.txt": b"airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\nmonkey\nship\ntruck\n",
        "stl10_binary/fold_indices.txt": folds.encode(),
    }
    return members, x_train, y_train, x_test, y_test, x_unl


def test_stl10_splits_folds_and_memory_map(server, monkeypatch, forbid, tmp_path):
    from dsfiles import md5

    members, x_train, y_train, x_test, y_test, x_unl = stl10_archive()
    monkeypatch.setattr(STL10, "train_list", [[n, md5(members[f"stl10_binary/{n}"])] for n, _ in STL10.train_list])
    monkeypatch.setattr(STL10, "test_list", [[n, md5(members[f"stl10_binary/{n}"])] for n, _ in STL10.test_list])
    paths = serve(server, monkeypatch, STL10, {"stl10_binary.tar.gz": tar_gz(members)})
    ds = STL10(tmp_path, split="train", download=True)
    assert len(ds) == 6 and ds.data.shape == (6, 3, 96, 96)
    img, target = ds[3]
    # the file stores each channel column-major: image[h, w, c] = raw[c, w, h]
    np.testing.assert_array_equal(img, x_train[3].transpose(2, 1, 0))
    assert img[10, 20, 1] == x_train[3, 1, 20, 10]
    assert target == 9 and ds.classes[9] == "truck" and ds.class_to_idx["cat"] == 3
    assert isinstance(ds.data, np.memmap)

    fold = STL10(tmp_path, split="train", folds=1)
    assert len(fold) == 3 and [fold[i][1] for i in range(3)] == [int(y_train[i]) - 1 for i in (1, 3, 5)]
    test = STL10(tmp_path, split="test")
    assert [test[i][1] for i in range(3)] == [3, 3, 8]
    mixed = STL10(tmp_path, split="train+unlabeled")
    assert len(mixed) == 8 and mixed[7][1] == -1
    np.testing.assert_array_equal(mixed[7][0], x_unl[1].transpose(2, 1, 0))
    assert mixed.data.shape == (8, 3, 96, 96)
    unl = STL10(tmp_path, split="unlabeled")
    assert len(unl) == 2 and unl[0][1] == -1
    assert server.count(paths["stl10_binary.tar.gz"]) == 1

    forbid("hubkit.datasets._files.extract", HASHER)
    assert STL10(tmp_path, split="test", download=True)[2][1] == 8
    assert server.count(paths["stl10_binary.tar.gz"]) == 1


def test_stl10_bad_folds(tmp_path):
    with pytest.raises(ArgumentError):
        STL10(tmp_path, folds=10)
    with pytest.raises(ArgumentError):
        STL10(tmp_path, folds="1")


# ---------------------------------------------------------------- USPS, SEMEION


def usps_text(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 256)).astype(np.float32)
    x[0, :10] = [-1, 1, 0, -0.5, 0.5, 0.99, -0.99, 0.25, -0.25, 0.7]
    y = rng.integers(1, 11, n)
    lines = [f"{y[i]} " + " ".join(f"{j + 1}:{x[i, j]:.6f}" for j in range(256)) for i in range(n)]
    return ("\n".join(lines) + "\n").encode(), np.array([[float(f"{v:.6f}") for v in row] for row in x],
                                                       dtype=np.float32), y


def test_usps_download_decode_cache(server, monkeypatch, forbid, tmp_path):
    data, x, y = usps_text(5, 7)
    paths = serve(server, monkeypatch, USPS, {"usps.t.bz2": bz2_bytes(data)})
    ds = USPS(tmp_path, train=False, download=True)
    expected = ((x.reshape(-1, 16, 16) + 1) / 2 * 255).astype(np.uint8)
    assert len(ds) == 5 and ds.data.dtype == np.uint8
    img, target = ds[0]
    np.testing.assert_array_equal(img, expected[0])
    assert list(img[0, :3]) == [0, 255, 127]
    assert target == int(y[0]) - 1 and ds.targets == [int(v) - 1 for v in y]
    forbid("hubkit.datasets.vision.usps.read_libsvm", HASHER)
    assert USPS(tmp_path, train=False, download=True).targets == ds.targets
    assert server.count(paths["usps.t.bz2"]) == 1


def test_semeion_download_decode_cache(server, monkeypatch, forbid, tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 2, (4, 256))
    labels = np.array([3, 0, 9, 3])
    rows = [" ".join(f"{p:.4f}" for p in pixels[i]) + " " + " ".join("1" if k == labels[i] else "0"
                                                                       for k in range(10)) for i in range(4)]
    paths = serve(server, monkeypatch, SEMEION, {"semeion.data": ("\n".join(rows) + "\n").encode()})
    ds = SEMEION(tmp_path)  # download=True is SEMEION's default, as in torchvision
    assert len(ds) == 4 and ds.data.shape == (4, 16, 16)
    np.testing.assert_array_equal(ds[2][0], (pixels[2] * 255).astype(np.uint8).reshape(16, 16))
    assert [ds[i][1] for i in range(4)] == [3, 0, 9, 3]
    forbid("hubkit.datasets.vision.semeion.read_semeion", HASHER)
    assert SEMEION(tmp_path)[3][1] == 3
    assert server.count(paths["semeion.data"]) == 1


@pytest.mark.parity
def test_matches_torchvision_cifar_svhn_usps(server, monkeypatch, tmp_path):
    import torchvision

    members, _, _, _ = cifar10_archive()
    patch_member_md5s(monkeypatch, CIFAR10, members, "cifar-10-batches-py")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "train_list", CIFAR10.train_list)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "test_list", CIFAR10.test_list)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "meta", CIFAR10.meta)
    serve(server, monkeypatch, CIFAR10, {"cifar-10-python.tar.gz": tar_gz(members)})
    ours, theirs = CIFAR10(tmp_path, download=True), torchvision.datasets.CIFAR10(tmp_path)
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.targets == theirs.targets and ours.classes == theirs.classes

    data, _, _ = svhn_mat(4, 1)
    serve(server, monkeypatch, SVHN, {"test_32x32.mat": data})
    ours = SVHN(tmp_path, split="test", download=True)
    monkeypatch.setitem(torchvision.datasets.SVHN.split_list, "test", ["", "test_32x32.mat", None])
    theirs = torchvision.datasets.SVHN(tmp_path, split="test")
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.labels, theirs.labels)
    np.testing.assert_array_equal(ours[3][0], np.asarray(theirs[3][0]))

    text, _, _ = usps_text(3, 2)
    serve(server, monkeypatch, USPS, {"usps.bz2": bz2_bytes(text)})
    ours, theirs = USPS(tmp_path, download=True), torchvision.datasets.USPS(tmp_path)
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.targets == theirs.targets
