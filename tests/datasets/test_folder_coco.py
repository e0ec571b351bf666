"""ImageFolder / DatasetFolder on real image files, and COCO (annotation JSON + images) downloads."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dsfiles import coco_json, serve, total_gets, zip_bytes

from hubkit.datasets import CocoCaptions, CocoDetection, DatasetFolder, ImageFolder
from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError

Image = pytest.importorskip("PIL.Image")


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_tree(root, rng):
    pics = {}
    for cls, names in {"cat": ["b.png", "a.png"], "dog": ["x.PNG", "sub/y.png"], "zebra": ["z.bmp"]}.items():
        for name in names:
            arr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path, format="PNG" if name.lower().endswith("png") else "BMP")
            pics[str(path)] = arr
    (root / "cat" / "notes.txt").write_text("not an image")
    return pics


def test_image_folder_order_classes_and_pixels(tmp_path):
    pics = make_tree(tmp_path, np.random.default_rng(0))
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog", "zebra"] and ds.class_to_idx == {"cat": 0, "dog": 1, "zebra": 2}
    names = [p.removeprefix(str(tmp_path) + "/") for p, _ in ds.samples]
    assert names == ["cat/a.png", "cat/b.png", "dog/x.PNG", "dog/sub/y.png", "zebra/z.bmp"]
    assert ds.targets == [0, 0, 1, 1, 2] and ds.imgs is ds.samples
    img, target = ds[3]
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8 and target == 1
    np.testing.assert_array_equal(img, pics[ds.samples[3][0]])


def test_dataset_folder_custom_loader_and_validity(tmp_path):
    make_tree(tmp_path, np.random.default_rng(1))
    ds = DatasetFolder(tmp_path, loader=lambda p: p.rsplit("/", 1)[-1], extensions=(".txt",), allow_empty=True)
    assert [ds[i] for i in range(len(ds))] == [("notes.txt", 0)]
    with pytest.raises(DatasetNotFoundError, match="dog, zebra"):
        DatasetFolder(tmp_path, loader=str, extensions=(".txt",))
    with pytest.raises(ArgumentError):
        DatasetFolder(tmp_path, loader=str)
    only_b = ImageFolder(tmp_path, is_valid_file=lambda p: p.endswith("b.png"), allow_empty=True)
    assert len(only_b) == 1


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="class folder"):
        ImageFolder(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = ImageFolder(tmp_path)
    with pytest.raises(DatasetError, match="cannot decode"):
        ds[0]


def coco_zips(rng):
    imgs = {1: rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), 7: rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)}
    images = [{"id": 7, "file_name": "000000000007.png", "height": 3, "width": 5},
              {"id": 1, "file_name": "000000000001.png", "height": 4, "width": 6}]
    anns = [{"id": 10, "image_id": 1, "category_id": 18, "bbox": [0, 0, 2, 2], "area": 4.0, "iscrowd": 0},
            {"id": 11, "image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 1], "area": 2.0, "iscrowd": 0},
            {"id": 12, "image_id": 1, "category_id": 1, "bbox": [2, 2, 1, 1], "area": 1.0, "iscrowd": 1}]
    cats = [{"id": 1, "name": "person", "supercategory": "person"},
            {"id": 18, "name": "dog", "supercategory": "animal"}]
    caps = [{"id": 20, "image_id": 1, "caption": "a dog"}, {"id": 21, "image_id": 1, "caption": "a pet"},
            {"id": 22, "image_id": 7, "caption": "someone"}]
    val = zip_bytes({f"val2017/{i['file_name']}": png_bytes(imgs[i["id"]]) for i in images})
    ann = zip_bytes({"annotations/instances_val2017.json": coco_json(images, anns, cats),
                     "annotations/captions_val2017.json": coco_json(images, caps, None)})
    return {"val2017.zip": val, "annotations_trainval2017.zip": ann}, imgs


def test_coco_download_detection_and_captions(server, monkeypatch, forbid, _isolated_hubkit_home):
    payloads, imgs = coco_zips(np.random.default_rng(3))
    serve(server, monkeypatch, CocoDetection, payloads)
    ds = CocoDetection(download=True)
    assert ds.root == _isolated_hubkit_home / "datasets" / "coco" / "val2017"
    assert ds.ids == [1, 7] and len(ds) == 2
    img, target = ds[0]
    np.testing.assert_array_equal(img, imgs[1])
    assert [a["id"] for a in target] == [10, 12]
    assert ds.classes == ["person", "dog"] and ds.class_to_idx == {"person": 1, "dog": 18}
    assert ds.coco.getAnnIds(imgIds=1, iscrowd=0) == [10]
    assert ds.coco.getCatIds(catNms=["dog"]) == [18]
    assert sorted(ds.coco.getImgIds(catIds=[1])) == [1, 7]
    before = total_gets(server)
    forbid("hubkit.datasets._files.extract")
    caps = CocoCaptions(download=True, transforms=lambda im, t: (im.shape, t))
    assert caps[0] == ((4, 6, 3), ["a dog", "a pet"]) and caps[1][1] == ["someone"]
    assert total_gets(server) == before


def test_coco_missing_says_what_to_do(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        CocoDetection(tmp_path / "coco" / "val2017", tmp_path / "ann.json")
    assert "download=True" in str(info.value) and "val2017.zip" in str(info.value)


def test_coco_rejects_non_int_index_and_mixed_transforms(server, monkeypatch, tmp_path):
    payloads, _ = coco_zips(np.random.default_rng(4))
    serve(server, monkeypatch, CocoDetection, payloads)
    ds = CocoDetection(tmp_path / "val2017", download=True)
    with pytest.raises(ArgumentError):
        ds["0"]
    with pytest.raises(ArgumentError):
        CocoDetection(tmp_path / "val2017", transform=str, transforms=lambda a, b: (a, b))
