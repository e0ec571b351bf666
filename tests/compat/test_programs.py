"""PyTorch training programs run on hubkit with only their imports rewritten.

Each program in ``programs/`` is plain torch code following a well-known public example. The
default suite runs each under hubkit on small data in the upstream file formats (MNIST and CIFAR
served by the local HTTP server and downloaded through hubkit's dataset classes). With
``-m parity`` the same program also runs under torch, from the same initial weights and the same
random draws, and every logged loss must agree within 1e-4.
"""

from __future__ import annotations

import gzip
import math
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from dsfiles import cifar_batch, gz, idx_bytes, md5, serve, tar_gz
from harness import rewrite_imports, run_parity, run_program

# ---------------------------------------------------------------- data in the upstream formats


def _mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Digit-like images: a bright bar whose position encodes the label, plus noise (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 2 + 2 * y: 5 + 2 * y, 4:24] = 230
    return images, labels


MNIST_FILES = {
    "train-images-idx3-ubyte": lambda: idx_bytes(_mnist_arrays(64, 0)[0]),
    "train-labels-idx1-ubyte": lambda: idx_bytes(_mnist_arrays(64, 0)[1]),
    "t10k-images-idx3-ubyte": lambda: idx_bytes(_mnist_arrays(32, 1)[0]),
    "t10k-labels-idx1-ubyte": lambda: idx_bytes(_mnist_arrays(32, 1)[1]),
}


def _cifar_members() -> dict[str, bytes]:
    rng = np.random.default_rng(2)
    members = {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        members[f"cifar-10-batches-py/{name}"] = cifar_batch(rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                                                             rng.integers(0, 10, 4).tolist())
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {"label_names": names, "num_cases_per_batch": 4, "num_vis": 3072}, protocol=2)
    return members


def _patch_cifar_md5s(monkeypatch, cls, members: dict[str, bytes]) -> None:
    folder = "cifar-10-batches-py"
    monkeypatch.setattr(cls, "train_list", [[n, md5(members[f"{folder}/{n}"])] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5(members[f"{folder}/{n}"])] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", dict(cls.meta, md5=md5(members[f"{folder}/{cls.meta['filename']}"])))


def mnist(root: Path, framework: str, server, monkeypatch) -> None:
    """hubkit downloads the gzipped IDX files from the local server; torchvision reads its raw/ folder."""
    if framework == "hubkit":
        from hubkit.datasets import MNIST

        serve(server, monkeypatch, MNIST, {f"{name}.gz": gz(make()) for name, make in MNIST_FILES.items()})
        return
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, make in MNIST_FILES.items():
        (raw / name).write_bytes(make())


def cifar10(root: Path, framework: str, server, monkeypatch) -> None:
    members = _cifar_members()
    if framework == "hubkit":
        from hubkit.datasets import CIFAR10

        _patch_cifar_md5s(monkeypatch, CIFAR10, members)
        serve(server, monkeypatch, CIFAR10, {"cifar-10-python.tar.gz": tar_gz(members)})
        return
    import torchvision

    _patch_cifar_md5s(monkeypatch, torchvision.datasets.CIFAR10, members)
    archive = root / "cifar-10-python.tar.gz"
    archive.write_bytes(tar_gz(members))
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "tgz_md5", md5(archive.read_bytes()))
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")


def text_corpus(root: Path, framework: str, server, monkeypatch) -> None:
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(30)]
    for split, lines in (("train", 40), ("valid", 10), ("test", 10)):
        body = "\n".join(" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(lines))
        (root / f"{split}.txt").write_text(body + "\n")


def images(root: Path, framework: str, server, monkeypatch) -> None:
    from PIL import Image

    rng = np.random.default_rng(4)
    for split, count in (("train", 6), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            yy, xx = np.mgrid[0:40, 0:48]
            base = 128 + 100 * np.sin(xx / (3 + i)) * np.cos(yy / (4 + i))
            rgb = np.stack([base, 255 - base, base / 2], -1) + rng.normal(0, 5, (40, 48, 3))
            Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(root / split / f"{i}.png")


def image_folder(root: Path, framework: str, server, monkeypatch) -> None:
    """64x64 PNGs in class folders: the DCGAN example's ``--dataset folder`` at its native size (the resize is
    the identity, so torchvision's PIL path and hubkit's array path see the same pixels)."""
    from PIL import Image

    rng = np.random.default_rng(8)
    for label in ("a", "b"):
        (root / label).mkdir()
        for i in range(12):
            yy, xx = np.mgrid[0:64, 0:64]
            base = 128 + 90 * np.sin(xx / (4 + i)) * np.cos(yy / (5 + i))
            rgb = np.stack([base, 255 - base, base / 2], -1) + rng.normal(0, 8, (64, 64, 3))
            Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(root / label / f"{i}.png")


def mnist_pickle(root: Path, framework: str, server, monkeypatch) -> None:
    """deeplearning.net's mnist.pkl.gz: ((x_train, y_train), (x_valid, y_valid), (x_test, y_test))."""
    def split(n, seed):
        x, y = _mnist_arrays(n, seed)
        return (x.reshape(n, 784) / 255).astype(np.float32), y.astype(np.int64)

    with gzip.open(root / "mnist.pkl.gz", "wb") as f:
        pickle.dump((split(96, 5), split(32, 6), split(8, 7)), f, protocol=2)


def no_data(root: Path, framework: str, server, monkeypatch) -> None:
    pass


# ---------------------------------------------------------------- the programs


# name -> (data builder, argv given the data root)
PROGRAMS: dict[str, tuple[Callable, Callable[[Path], list[str]]]] = {
    "mnist_cnn": (mnist, lambda d: ["--data", str(d), "--epochs", "2", "--batch-size", "16",
                                    "--test-batch-size", "16", "--log-interval", "1", "--save-model"]),
    "blitz_cifar": (cifar10, lambda d: ["--data", str(d), "--epochs", "2", "--batch-size", "4", "--log-every", "2"]),
    "vae": (mnist, lambda d: ["--data", str(d), "--epochs", "2", "--batch-size", "16", "--log-interval", "1"]),
    "dcgan": (image_folder, lambda d: ["--dataset", "folder", "--dataroot", str(d), "--batchSize", "8",
                                       "--imageSize", "64", "--nz", "8", "--ngf", "4", "--ndf", "4", "--niter", "1"]),
    # dropout 0 for the LSTM: nn.LSTM draws its between-layer dropout inside the fused layer, where the parity
    # harness cannot give both frameworks the same masks
    "word_lm_lstm": (text_corpus, lambda d: ["--data", str(d), "--emsize", "16", "--nhid", "16", "--epochs", "2",
                                             "--batch_size", "4", "--bptt", "8", "--log-interval", "2",
                                             "--dropout", "0"]),
    "word_lm_transformer": (text_corpus, lambda d: ["--data", str(d), "--emsize", "16", "--nhid", "32", "--nhead",
                                                    "2", "--epochs", "2", "--batch_size", "4", "--bptt", "8",
                                                    "--log-interval", "2", "--lr", "1"]),
    "sine_lstm": (no_data, lambda d: ["--steps", "2", "--length", "60", "--n", "8", "--hidden", "8", "--future",
                                      "10"]),
    "mnist_rnn": (mnist, lambda d: ["--data", str(d), "--epochs", "2", "--batch-size", "16",
                                    "--test-batch-size", "16", "--log-interval", "1"]),
    "super_resolution": (images, lambda d: ["--data", str(d), "--upscale_factor", "2", "--crop_size", "16",
                                            "--batchSize", "3", "--testBatchSize", "2", "--nEpochs", "2"]),
    "siamese": (mnist, lambda d: ["--data", str(d), "--epochs", "2", "--batch-size", "16", "--log-interval", "1"]),
    "polynomial_autograd": (no_data, lambda d: ["--steps", "300", "--log-every", "50"]),
    "polynomial_custom_function": (no_data, lambda d: ["--steps", "300", "--log-every", "50"]),
    "nn_tutorial": (mnist_pickle, lambda d: ["--data", str(d), "--bs", "32", "--epochs", "2"]),
    "regression": (no_data, lambda d: ["--max-batches", "60", "--log-interval", "10"]),
}


def _run(name: str, framework: str, tmp_path: Path, server, monkeypatch):
    build, argv = PROGRAMS[name]
    root = tmp_path / f"data_{framework}"
    work = tmp_path / f"work_{framework}"
    root.mkdir()
    work.mkdir()
    build(root, framework, server, monkeypatch)
    return root, work, argv(root)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_runs_on_hubkit(name, tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("HUBKIT_NO_PROGRESS", "1")
    _, work, argv = _run(name, "hubkit", tmp_path, http_server, monkeypatch)
    import hubkit

    hubkit.manual_seed(0)
    result = run_program(name, argv, "hubkit", work)
    assert result.losses, f"{name} printed no loss:\n{result.output}"
    assert all(math.isfinite(v) for v in result.losses), result.output


@pytest.mark.parity
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_matches_torch_step_by_step(name, tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("HUBKIT_NO_PROGRESS", "1")
    _, work_t, argv_t = _run(name, "torch", tmp_path, http_server, monkeypatch)
    _, work_h, argv_h = _run(name, "hubkit", tmp_path, http_server, monkeypatch)
    ours, theirs = run_parity(name, (argv_h, argv_t), (work_h, work_t))
    assert len(ours.losses) == len(theirs.losses) and ours.losses, (ours.output, theirs.output)
    np.testing.assert_allclose(ours.losses, theirs.losses, rtol=1e-4, atol=1e-4,
                               err_msg=f"\n--- hubkit:\n{ours.output}\n--- torch:\n{theirs.output}")


# ---------------------------------------------------------------- the import rewriter


@pytest.mark.parametrize(("line", "expected"), [
    ("import torch", "import hubkit as torch"),
    ("import torchvision", "import hubkit as torchvision"),
    ("import torch.nn as nn", "import hubkit.nn as nn"),
    ("import torch.nn.functional as F", "import hubkit.nn.functional as F"),
    ("import torch.utils.data", "import hubkit.utils.data"),
    ("from torch import nn, optim", "from hubkit import nn, optim"),
    ("from torch.optim.lr_scheduler import StepLR", "from hubkit.optim.lr_scheduler import StepLR"),
    ("from torchvision import datasets, transforms", "from hubkit import datasets, transforms"),
    ("import torchvision.utils as vutils", "import hubkit.utils as vutils"),
    ("    import torch", "    import hubkit as torch"),
    ("x = torch.zeros(3)  # import torch", "x = torch.zeros(3)  # import torch"),
    ("import torchaudio", "import torchaudio"),
])
def test_rewrite_imports_touches_only_torch_imports(line, expected):
    assert rewrite_imports(line) == expected + "\n"


def test_every_program_imports_only_what_the_rewriter_maps():
    for path in sorted((Path(__file__).parent / "programs").glob("*.py")):
        rewritten = rewrite_imports(path.read_text())
        assert "import torch" not in rewritten.replace("import hubkit as torch", ""), path.name
        assert "from torch" not in rewritten, path.name
