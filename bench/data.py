"""Data benchmarks: hubkit.data / hubkit.datasets against PyTorch / torchvision, side by side in one run.

    python bench/data.py                   # every case
    python bench/data.py --only loader     # cases whose name contains "loader"
    python bench/data.py --repeat 3

Each case is a name plus two setup functions (hubkit, torch) that build inputs and return a
zero-argument callable to time. After one warm-up each, the hubkit and torch runs alternate
(so load from other processes hits both alike) and the best of ``--repeat`` runs is reported;
the ratio is hubkit time / torch time (lower is better, 1.0 = parity). Add a section by
appending cases to ``CASES``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import hubkit

Setup = Callable[[], Callable[[], object]]


@dataclass
class Case:
    name: str
    hubkit: Setup
    torch: Setup | None


CASES: list[Case] = []


# ---------------------------------------------------------------- DataLoader epoch (MNIST-sized)

# 60,000 x 28 x 28 uint8 images, as MNIST's training set, generated here (no download).
_N, _SIDE, _BATCH = 60_000, 28, 64
_MNIST_MEAN, _MNIST_STD = (0.1307,), (0.3081,)


def _mnist_like() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (_N, _SIDE, _SIDE), dtype=np.uint8), rng.integers(0, 10, _N)


def _epoch(loader) -> Callable[[], object]:
    def run() -> int:
        batches = 0
        for _images, _labels in loader:
            batches += 1
        return batches

    return run


def _hubkit_loader(num_workers: int) -> Setup:
    def setup() -> Callable[[], object]:
        from hubkit import transforms as T
        from hubkit.data import DataLoader, Dataset

        images, labels = _mnist_like()
        transform = T.Compose([T.ToTensor(), T.Normalize(_MNIST_MEAN, _MNIST_STD)])

        class Images(Dataset):
            def __len__(self) -> int:
                return len(images)

            def __getitem__(self, i: int):
                return transform(images[i]), int(labels[i])

        loader = DataLoader(Images(), batch_size=_BATCH, shuffle=True, num_workers=num_workers,
                            generator=hubkit.Generator(0))
        return _epoch(loader)

    return setup


def _torch_loader(num_workers: int) -> Setup:
    def setup() -> Callable[[], object]:
        import torch
        import torchvision.transforms as TT
        from torch.utils.data import DataLoader, Dataset

        images, labels = _mnist_like()
        transform = TT.Compose([TT.ToTensor(), TT.Normalize(_MNIST_MEAN, _MNIST_STD)])

        class Images(Dataset):
            def __len__(self) -> int:
                return len(images)

            def __getitem__(self, i: int):
                return transform(images[i]), int(labels[i])

        loader = DataLoader(Images(), batch_size=_BATCH, shuffle=True, num_workers=num_workers,
                            generator=torch.Generator().manual_seed(0))
        return _epoch(loader)

    return setup


for _workers in (0, 2):
    CASES.append(
        Case(
            f"loader epoch 60000x28x28 bs{_BATCH} ToTensor+Normalize workers={_workers}",
            _hubkit_loader(_workers),
            _torch_loader(_workers),
        )
    )


# ---------------------------------------------------------------- dataset construction (MNIST-sized)

# MNIST's four files, generated: 60,000 (+ 10,000 test) 28 x 28 images with MNIST's sparsity (about 19% of
# the pixels ink), so the .gz compresses (and decompresses) like the real 9.9 MB file. torchvision prepares
# all four files on a first construction (its download() extracts every resource); hubkit reads the split.
_DS_DIR = None


def _ds_files() -> dict[str, bytes]:
    """``{file name: gz bytes}`` of generated MNIST files (made once per run)."""
    global _DS_DIR
    if _DS_DIR is None:
        import gzip
        import struct

        rng = np.random.default_rng(1)
        _DS_DIR = {}
        for split, n in (("train", _N), ("t10k", 10_000)):
            ink = rng.random((n, _SIDE, _SIDE)) < 0.19
            images = np.where(ink, rng.integers(1, 256, (n, _SIDE, _SIDE)), 0).astype(np.uint8)
            labels = rng.integers(0, 10, n).astype(np.uint8)
            head = bytes([0, 0, 8, 3]) + struct.pack(">3I", n, _SIDE, _SIDE)
            _DS_DIR[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(head + images.tobytes(), mtime=0)
            _DS_DIR[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(
                bytes([0, 0, 8, 1]) + struct.pack(">I", n) + labels.tobytes(), mtime=0)
    return _DS_DIR


def _fresh_roots(decompressed: bool) -> Callable[[], str]:
    """A callable that returns a new root holding ``MNIST/raw/*.gz`` (and the decompressed files)."""
    import atexit
    import gzip
    import hashlib
    import shutil
    import tempfile

    files = _ds_files()
    base = tempfile.mkdtemp(prefix="hubkit-bench-mnist-")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    count = 0

    def next_root() -> str:
        nonlocal count
        count += 1
        raw = os.path.join(base, str(count), "MNIST", "raw")
        os.makedirs(raw)
        for name, data in files.items():
            with open(os.path.join(raw, name), "wb") as f:
                f.write(data)
            if decompressed:
                with open(os.path.join(raw, name[:-3]), "wb") as f:
                    f.write(gzip.decompress(data))
        return os.path.dirname(os.path.dirname(raw))

    next_root.md5 = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}  # type: ignore[attr-defined]
    return next_root


def _hubkit_mnist(cached: bool) -> Setup:
    def setup() -> Callable[[], object]:
        import dataclasses

        from hubkit.datasets import MNIST

        roots = _fresh_roots(decompressed=False)
        MNIST.resources = tuple(
            dataclasses.replace(r, md5=roots.md5.get(r.filename or r.url.rsplit("/", 1)[1]), size=None)
            for r in MNIST.resources
        )
        if cached:
            root = roots()
            MNIST(root)  # first construction writes the .npy cache
            return lambda: MNIST(root)
        pending = [roots() for _ in range(6)]  # fresh roots made before timing: no copy inside the timing
        return lambda: MNIST(pending.pop() if pending else roots())

    return setup


def _torchvision_mnist(cached: bool) -> Setup:
    def setup() -> Callable[[], object]:
        from torchvision.datasets import MNIST

        roots = _fresh_roots(decompressed=cached)
        MNIST.resources = list(roots.md5.items())
        if cached:
            root = roots()
            return lambda: MNIST(root)  # torchvision re-reads the decompressed files each time
        pending = [roots() for _ in range(6)]
        # download=True with the verified .gz present: md5 check + decompress + parse, no network
        return lambda: MNIST(pending.pop() if pending else roots(), download=True)

    return setup


CASES.append(Case("MNIST 60000x28x28 first construction from .gz", _hubkit_mnist(False),
                  _torchvision_mnist(False)))
CASES.append(Case("MNIST 60000x28x28 later construction (hubkit: .npy memory map)", _hubkit_mnist(True),
                  _torchvision_mnist(True)))


# ---------------------------------------------------------------- runner


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _best_alternating(ours: Callable[[], object], theirs: Callable[[], object] | None, repeat: int):
    ours()  # warm-up
    if theirs is not None:
        theirs()
    best_ours = best_theirs = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, _timed(ours))
        if theirs is not None:
            best_theirs = min(best_theirs, _timed(theirs))
    return best_ours, (best_theirs if theirs is not None else None)


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only cases whose name contains this text")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (the best is reported)")
    args = parser.parse_args(argv)

    torch_ok = _have_torch()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}" + (f", torch {__import__('torch').__version__}" if torch_ok else ", no torch"))
    print(f"{'case':<64} {'hubkit s':>10} {'torch s':>10} {'ratio':>7}")
    for case in CASES:
        if args.only not in case.name:
            continue
        theirs_fn = case.torch() if torch_ok and case.torch is not None else None
        ours, theirs = _best_alternating(case.hubkit(), theirs_fn, args.repeat)
        ratio = f"{ours / theirs:7.2f}" if theirs else "      -"
        theirs_text = f"{theirs:10.4f}" if theirs is not None else "         -"
        print(f"{case.name:<64} {ours:10.4f} {theirs_text} {ratio}")


if __name__ == "__main__":
    main()
