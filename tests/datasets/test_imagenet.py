"""ImageNet: the official archives (devkit + val tarball) sorted into torchvision's layout, once."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from dsfiles import md5

from hubkit.datasets import ImageNet
from hubkit.datasets.vision import imagenet
from hubkit.errors import DatasetError, DatasetNotFoundError

WNIDS = ["n01440764", "n01443537", "n02102040"]  # ids 1..3 in the devkit's own order
NAMES = ["tench, Tinca tinca", "goldfish, Carassius auratus", "English springer, English springer spaniel"]


def _tar(members: dict[str, bytes], gz: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _devkit(labels: list[int]) -> bytes:
    import scipy.io as sio

    fields = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O"),
              ("children", "O"), ("wordnet_height", "O"), ("num_train_images", "O")]
    rows = [(i + 1, w, n, "a gloss", 0, np.zeros(0), 0, 1300) for i, (w, n) in enumerate(zip(WNIDS, NAMES))]
    rows.append((4, "n00001740", "entity", "the root", 3, np.array([1, 2, 3]), 18, 0))  # an ancestor: not a class
    synsets = np.array(rows, dtype=fields)
    mat = io.BytesIO()
    sio.savemat(mat, {"synsets": synsets})
    truth = "".join(f"{i}\n" for i in labels).encode()
    return _tar({"ILSVRC2012_devkit_t12/data/meta.mat": mat.getvalue(),
                 "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt": truth}, gz=True)


def _jpeg(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 10, 3), value, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def archives(tmp_path, monkeypatch):
    labels = [3, 1, 2, 1, 3]  # devkit ids of the 5 validation images, in file-name order
    val = _tar({f"ILSVRC2012_val_{i:08d}.JPEG": _jpeg(40 * i) for i in range(1, 6)}, gz=False)
    devkit = _devkit(labels)
    (tmp_path / "ILSVRC2012_img_val.tar").write_bytes(val)
    (tmp_path / "ILSVRC2012_devkit_t12.tar.gz").write_bytes(devkit)
    monkeypatch.setitem(imagenet.ARCHIVES, "val", ("ILSVRC2012_img_val.tar", md5(val)))
    monkeypatch.setitem(imagenet.ARCHIVES, "devkit", ("ILSVRC2012_devkit_t12.tar.gz", md5(devkit)))
    return tmp_path


def test_val_archives_are_sorted_into_class_folders(archives):
    ds = ImageNet(archives, split="val")
    assert ds.wnids == sorted(WNIDS) and len(ds) == 5
    assert ds.classes[ds.wnid_to_idx["n01443537"]] == ("goldfish", "Carassius auratus")
    assert ds.class_to_idx["English springer spaniel"] == ds.wnid_to_idx["n02102040"]
    by_file = {p.rsplit("/", 1)[1]: t for p, t in ds.samples}
    assert by_file["ILSVRC2012_val_00000001.JPEG"] == ds.wnid_to_idx["n02102040"]
    assert by_file["ILSVRC2012_val_00000002.JPEG"] == ds.wnid_to_idx["n01440764"]
    image, target = ds[0]
    assert image.shape == (8, 10, 3) and image.dtype == np.uint8
    assert (archives / "meta.bin").is_file()
    assert sorted(p.name for p in (archives / "val").iterdir()) == sorted(WNIDS)
    again = ImageNet(archives, split="val")  # prepared: no second extraction
    assert again.samples == ds.samples


def test_missing_archives_and_wrong_ones(tmp_path, archives):
    with pytest.raises(DatasetNotFoundError, match="not downloaded automatically"):
        ImageNet(tmp_path / "nothing", split="val")
    (archives / "ILSVRC2012_img_val.tar").write_bytes(b"not a tar")
    with pytest.raises(DatasetError, match="damaged or not the official"):
        ImageNet(archives, split="val")
    assert not (archives / "val").exists()


@pytest.mark.parity
def test_torchvision_reads_the_root_hubkit_prepared(archives):
    torchvision = pytest.importorskip("torchvision")
    ours = ImageNet(archives, split="val")
    theirs = torchvision.datasets.ImageNet(str(archives), split="val")
    assert theirs.wnids == ours.wnids and theirs.classes == ours.classes
    assert [(p, t) for p, t in theirs.samples] == ours.samples
