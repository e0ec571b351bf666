"""list_datasets / download / resources, the CLI commands, and import hygiene."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dsfiles import gz, idx_bytes, serve, total_gets

import hubkit.datasets as hd
from hubkit.cli import main, resources_for_name
from hubkit.datasets import MNIST
from hubkit.datasets._files import resource_filename
from hubkit.datasets._registry import declaring
from hubkit.errors import ArgumentError

REPO = Path(__file__).resolve().parents[2]


def mnist_payloads():
    rng = np.random.default_rng(0)
    x = {s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 3), ("t10k", 2))}
    y = {s: rng.integers(0, 10, len(v)).astype(np.uint8) for s, v in x.items()}
    payloads = {}
    for s in x:
        payloads[f"{s}-images-idx3-ubyte.gz"] = gz(idx_bytes(x[s]))
        payloads[f"{s}-labels-idx1-ubyte.gz"] = gz(idx_bytes(y[s]))
    return payloads, x, y


def test_every_listed_dataset_declares_verifiable_resources():
    names = hd.list_datasets()
    assert {"MNIST", "EMNIST", "QMNIST", "CIFAR10", "SVHN", "STL10", "USPS", "SEMEION", "CocoDetection",
            "YESNO", "SPEECHCOMMANDS", "AG_NEWS", "IMDB", "FashionMNIST", "KMNIST", "CIFAR100"} <= set(names)
    for name in names:
        res = hd.resources(name)
        assert res, name
        # a file whose publisher gives no checksum is declared so (and pinned at its first download)
        unverified = getattr(declaring(name), "unverified_files", ())
        for r in res:
            assert r.url.startswith(("http://", "https://")), (name, r)
            assert bool(r.md5 or r.sha256) != (resource_filename(r) in unverified), (name, r)
    assert hd.resources("mnist") == hd.resources("MNIST")
    assert hd.resources("MNIST")[0].mirrors == ("http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ArgumentError, match="Did you mean.*MNIST"):
        hd.download("MNSIT")
    assert hd.canonical_name("cifar10") == "CIFAR10" and hd.canonical_name("nope") is None


def test_download_then_offline_construction(http_server, monkeypatch, tmp_path):
    payloads, x, _ = mnist_payloads()
    serve(http_server, monkeypatch, MNIST, payloads)
    paths = hd.download("MNIST", tmp_path, progress=False)
    assert sorted(p.name for p in paths) == sorted(payloads)
    assert all(p.parent == tmp_path / "MNIST" / "raw" for p in paths)
    before = total_gets(http_server)
    assert hd.download("MNIST", tmp_path) == paths  # verified on disk: nothing fetched
    np.testing.assert_array_equal(MNIST(tmp_path, train=False).data, x["t10k"])
    assert total_gets(http_server) == before


def test_cli_download_datasets_and_mirror_sync(http_server, monkeypatch, tmp_path, capsys):
    payloads, _, _ = mnist_payloads()
    serve(http_server, monkeypatch, MNIST, payloads)
    root = tmp_path / "data"
    assert main(["download", "MNIST", "--root", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert str(root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz") in out

    assert main(["datasets", "--root", str(root)]) == 0
    table = capsys.readouterr().out
    assert re.search(r"^MNIST\s+4\s+[\d.]+ [KMG]?i?B\s+4/4\s", table, re.M)
    assert re.search(r"^CIFAR10\s+1\s+162\.6 MiB\s+0/1\s", table, re.M)

    assert [r.url for r in resources_for_name("MNIST")] == [r.url for r in MNIST.resources]
    mirror = tmp_path / "mirror"
    assert main(["mirror", "sync", str(mirror), "MNIST", "--no-progress"]) == 0
    host = f"127.0.0.1_{http_server.port}"
    assert (mirror / host / "MNIST" / "t10k-labels-idx1-ubyte.gz").read_bytes() == payloads["t10k-labels-idx1-ubyte.gz"]

    assert main(["download", "NOPE"]) == 1
    assert "Unknown dataset 'NOPE'" in capsys.readouterr().err


def test_nothing_imports_a_bare_datasets_package():
    pattern = re.compile(r"^\s*(import datasets\b|from datasets\b)", re.M)
    offenders = [p for folder in ("hubkit", "datasets", "zoo", "bench")
                 for p in (REPO / folder).rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_import_stays_light():
    code = ("import sys, hubkit.datasets; "
            "print([m for m in ('requests', 'tqdm', 'PIL', 'scipy', 'torch', 'filelock') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_datasets_are_hubkit_data_datasets_a_dataloader_batches(http_server, monkeypatch, tmp_path):
    from hubkit.data import ConcatDataset, DataLoader, Dataset

    payloads, x, y = mnist_payloads()
    serve(http_server, monkeypatch, MNIST, payloads)
    train, test = MNIST(tmp_path, download=True), MNIST(tmp_path, train=False)
    assert isinstance(train, Dataset) and isinstance(train, hd.ArrayDataset)
    both = train + test
    assert isinstance(both, ConcatDataset) and len(both) == 5
    images, labels = next(iter(DataLoader(train, batch_size=3)))
    np.testing.assert_array_equal(images.numpy(), x["train"])
    assert labels.numpy().tolist() == y["train"].tolist()


def test_a_dataset_registers_where_it_is_defined(monkeypatch):
    from hubkit.datasets import _registry
    from hubkit.hub import Resource

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))

    @hd.register_dataset
    class Tiny(hd.VisionDataset):
        resources = (Resource(url="https://example.org/tiny.bin", sha256="0" * 64),)

    assert "Tiny" in hd.list_datasets() and hd.canonical_name("tiny") == "Tiny"
    assert hd.resource_folder("Tiny", "/data") == Path("/data")  # no resource_folder: the root itself
    with pytest.raises(ArgumentError, match="declares no resources"):
        hd.register_dataset(type("Bare", (), {}))
