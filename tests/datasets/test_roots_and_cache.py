"""Dataset roots and the decoded-array cache when the disk is not what hubkit expects.

A root that is a file, a root nobody may write to, a ``hubkit-cache`` that is a file, and a manifest that
was damaged: each is a ``DatasetError`` that says what to do, or (for the cache, which is only a speed-up)
a warning and arrays kept in memory; never a traceback. Locks and extraction markers are the hub's.
"""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from dsfiles import gz, idx_bytes, serve, tar_gz

import hubkit.datasets as hd
from hubkit.datasets import MNIST, YESNO
from hubkit.errors import DatasetError
from hubkit.hub.transport.archive import is_extracted
from hubkit.hub.transport.cache import home_dir


def files() -> tuple[dict[str, bytes], np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 4).astype(np.uint8)
    out = {}
    for split in ("train", "t10k"):
        out[f"{split}-images-idx3-ubyte.gz"] = gz(idx_bytes(x))
        out[f"{split}-labels-idx1-ubyte.gz"] = gz(idx_bytes(y))
    return out, x


def test_a_root_that_is_a_file_is_a_dataset_error(tmp_path):
    root = tmp_path / "data"
    root.write_text("not a folder")
    with pytest.raises(DatasetError, match="is a file") as info:
        MNIST(root, download=True)
    assert str(root) in str(info.value) and "root=" in str(info.value)
    assert root.read_text() == "not a folder"


def test_downloading_into_a_root_nobody_may_write_says_which_root_to_pass(server, monkeypatch, tmp_path):
    payloads, _ = files()
    serve(server, monkeypatch, MNIST, payloads)
    root = tmp_path / "read-only"
    root.mkdir()
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):  # the tests run as root, so permission bits cannot refuse it
        if self.is_relative_to(root):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(DatasetError, match="root=") as info:
        MNIST(root, download=True)
    assert str(root / "MNIST") in str(info.value) and "Permission denied" in str(info.value)


def test_a_hubkit_cache_that_is_a_file_keeps_the_arrays_in_memory(server, monkeypatch, tmp_path, caplog):
    payloads, x = files()
    serve(server, monkeypatch, MNIST, payloads)
    blocker = tmp_path / "MNIST" / "hubkit-cache"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    with caplog.at_level(logging.WARNING, logger="hubkit.datasets"):
        ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data, x)
    assert blocker.read_text() == "in the way"
    assert any(str(blocker) in r.getMessage() and "in memory" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("damage", [
    {"arrays": {"data": "garbage"}},
    {"arrays": [1, 2, 3]},
    {"sources": {"x": "y"}},
    {"arrays": {"data": {"dtype": "uint8", "shape": "(4, 28, 28)", "size": 1, "mtime_ns": 1, "sha256": "0"}}},
    {"meta": "not a dict"},
    {"arrays": {}},
])
def test_a_damaged_manifest_is_rederived(damage, server, monkeypatch, tmp_path, caplog):
    payloads, x = files()
    serve(server, monkeypatch, MNIST, payloads)
    MNIST(tmp_path, download=True)
    manifest = tmp_path / "MNIST" / "hubkit-cache" / "train.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), **damage}))
    with caplog.at_level(logging.WARNING, logger="hubkit.datasets"):
        ds = MNIST(tmp_path)
    np.testing.assert_array_equal(ds.data, x)
    assert any("re-deriv" in r.getMessage() for r in caplog.records)
    assert isinstance(MNIST(tmp_path).data, np.memmap)  # the manifest was written anew


def test_no_lock_files_in_dataset_folders_and_one_extraction_marker(server, monkeypatch, tmp_path):
    payloads, _ = files()
    serve(server, monkeypatch, MNIST, payloads)
    MNIST(tmp_path, download=True)
    archive = tar_gz({"waves_yesno/0_1_0_0_1_0_1_1.wav": b"RIFF"})
    serve(server, monkeypatch, YESNO, {"waves_yesno.tar.gz": archive})
    YESNO(tmp_path, download=True)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".lock")]
    assert is_extracted(tmp_path / "waves_yesno.tar.gz", tmp_path)  # the hub's marker, understood by the hub


def test_the_default_root_reads_hubkit_home_through_the_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HUBKIT_HOME", str(tmp_path / "home"))
    assert hd.data_dir() == home_dir() == tmp_path / "home"
    assert hd.default_root() == tmp_path / "home" / "datasets"
    monkeypatch.delenv("HUBKIT_HOME")
    import platformdirs

    assert hd.data_dir() == Path(platformdirs.user_data_dir("hubkit"))  # datasets stay where users have them
    assert home_dir() == Path(platformdirs.user_cache_dir("hubkit"))
