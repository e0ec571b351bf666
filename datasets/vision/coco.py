"""COCO detection and captions: an annotation JSON plus an image folder (torchvision's classes).

``COCO`` is a small, dependency-free index over the annotation JSON with pycocotools' method names
(``getAnnIds``, ``getCatIds``, ``getImgIds``, ``loadAnns``, ``loadCats``, ``loadImgs``), so code written
against ``dataset.coco`` keeps working. With ``download=True`` the 2017 validation images and the 2017
annotations are downloaded and extracted into the folder above ``root`` (default:
``<data dir>/datasets/coco/{val2017,annotations}``).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError
from hubkit.hub import Resource

from .._dataset import VisionDataset
from .._files import RawFile, extracted_folder
from .._registry import register_dataset
from .._roots import default_root
from .folder import pil_loader

__all__ = ["COCO", "CocoCaptions", "CocoDetection"]


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, Iterable) and not isinstance(x, str | bytes | dict) else [x]


class COCO:
    """Index of a COCO annotation file: ``dataset``, ``anns``, ``imgs``, ``cats``, ``imgToAnns``, ``catToImgs``.

    Annotations of an image keep the order they have in the file, as in pycocotools.
    """

    def __init__(self, annotation_file: str | os.PathLike[str] | None = None) -> None:
        self.dataset: dict[str, Any] = {}
        self.anns: dict[int, dict] = {}
        self.imgs: dict[int, dict] = {}
        self.cats: dict[int, dict] = {}
        self.imgToAnns: dict[int, list[dict]] = defaultdict(list)
        self.catToImgs: dict[int, list[int]] = defaultdict(list)
        if annotation_file is not None:
            path = Path(annotation_file)
            try:
                with open(path, encoding="utf-8") as f:
                    dataset = json.load(f)
            except FileNotFoundError as exc:
                raise DatasetNotFoundError(f"COCO annotation file {path} does not exist") from exc
            except OSError as exc:
                raise DatasetError(f"Cannot read the COCO annotation file {path}: {exc.strerror or exc}. Pass annFile= "
                                   "the instances_*.json or captions_*.json file itself.") from exc
            except ValueError as exc:
                raise DatasetError(f"{path} is not valid JSON ({exc}); it is truncated or corrupted") from exc
            if not isinstance(dataset, dict):
                raise DatasetError(f"{path}: expected a JSON object with 'images', found {type(dataset).__name__}")
            self.dataset = dataset
            self.createIndex()

    def createIndex(self) -> None:
        """Build the lookup tables from ``dataset``."""
        try:
            for ann in self.dataset.get("annotations", []):
                self.imgToAnns[ann["image_id"]].append(ann)
                self.anns[ann["id"]] = ann
            for img in self.dataset.get("images", []):
                self.imgs[img["id"]] = img
            for cat in self.dataset.get("categories", []):
                self.cats[cat["id"]] = cat
            if "categories" in self.dataset:
                for ann in self.dataset.get("annotations", []):
                    self.catToImgs[ann["category_id"]].append(ann["image_id"])
        except (KeyError, TypeError) as exc:
            what = f"an entry lacks the key {exc}" if isinstance(exc, KeyError) else f"an entry is malformed ({exc})"
            raise DatasetError(
                f"COCO annotations: {what}; expected COCO's 'images' (id, file_name), 'annotations' (id, image_id, "
                "category_id) and 'categories' (id, name) lists of objects"
            ) from exc

    def getAnnIds(
        self, imgIds: Any = (), catIds: Any = (), areaRng: Any = (), iscrowd: bool | None = None
    ) -> list[int]:
        """Ids of annotations on the given images, of the given categories, with area inside ``areaRng``."""
        img_ids, cat_ids, area = _as_list(imgIds), set(_as_list(catIds)), _as_list(areaRng)
        if img_ids:
            anns = [a for i in img_ids for a in self.imgToAnns.get(i, [])]
        else:
            anns = self.dataset.get("annotations", [])
        if cat_ids:
            anns = [a for a in anns if a["category_id"] in cat_ids]
        if area:
            anns = [a for a in anns if area[0] < a["area"] < area[1]]
        if iscrowd is not None:
            anns = [a for a in anns if a["iscrowd"] == iscrowd]
        return [a["id"] for a in anns]

    def getCatIds(self, catNms: Any = (), supNms: Any = (), catIds: Any = ()) -> list[int]:
        """Ids of categories filtered by name, supercategory and id."""
        names, supers, ids = set(_as_list(catNms)), set(_as_list(supNms)), set(_as_list(catIds))
        cats = self.dataset.get("categories", [])
        if names:
            cats = [c for c in cats if c["name"] in names]
        if supers:
            cats = [c for c in cats if c["supercategory"] in supers]
        if ids:
            cats = [c for c in cats if c["id"] in ids]
        return [c["id"] for c in cats]

    def getImgIds(self, imgIds: Any = (), catIds: Any = ()) -> list[int]:
        """Ids of images among ``imgIds`` (all if empty) that contain every category in ``catIds``."""
        ids = set(_as_list(imgIds)) or set(self.imgs)
        for i, cat in enumerate(_as_list(catIds)):
            with_cat = set(self.catToImgs[cat])
            ids = with_cat if i == 0 and not _as_list(imgIds) else ids & with_cat
        return list(ids)

    def loadAnns(self, ids: Any = ()) -> list[dict]:
        return [self.anns[i] for i in _as_list(ids)]

    def loadCats(self, ids: Any = ()) -> list[dict]:
        return [self.cats[i] for i in _as_list(ids)]

    def loadImgs(self, ids: Any = ()) -> list[dict]:
        return [self.imgs[i] for i in _as_list(ids)]


def image_ids(coco: COCO, path: Path) -> list[Any]:
    """The image ids of ``coco`` in sorted order (the dataset's sample order), each image with a ``file_name``.

    Raises DatasetError naming ``path`` when ids mix types (they cannot be sorted: COCO's are integers) or an
    image entry has no ``file_name``, so a bad annotation file fails at construction, not at some sample.
    """
    kinds = {type(i): i for i in coco.imgs}
    if len(kinds) > 1:
        examples = ", ".join(f"{t.__name__} (e.g. {i!r})" for t, i in kinds.items())
        raise DatasetError(f"{path}: image ids mix types: {examples}. COCO image ids are integers; make every id "
                           "(and every annotation's image_id) an integer.")
    unnamed = [i for i, img in coco.imgs.items() if not isinstance(img.get("file_name"), str)]
    if unnamed:
        raise DatasetError(f"{path}: {len(unnamed)} image entries have no 'file_name' (image ids {unnamed[:5]!r}); "
                           "every COCO image names its file relative to the image folder (root).")
    return sorted(coco.imgs)


@register_dataset
class CocoDetection(VisionDataset):
    """COCO detection: ``ds[i]`` is ``(image (H, W, 3) uint8 ndarray, [annotation dict, ...])``.

    ``CocoDetection(root, annFile, transform=None, target_transform=None, transforms=None, download=False)``
    as in torchvision, plus ``download``. ``root`` is the image folder and ``annFile`` the JSON; both may be
    None for the default ``<data dir>/datasets/coco/val2017`` and its 2017 annotation file. Samples are the
    images of the annotation file sorted by id.
    """

    resources: tuple[Resource, ...] = (
        Resource(url="http://images.cocodataset.org/zips/val2017.zip", md5="442b8da7639aecaf257c1dceb8ba8c80",
                 sha256="4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05", size=815585330),
        Resource(url="http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                 md5="f4bbac642086de4f52a3fdda2de5fa2c",
                 sha256="113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268", size=252907541),
    )
    _default_ann = "instances_val2017.json"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        annFile: str | os.PathLike[str] | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        transforms: Callable | None = None,
        download: bool = False,
    ) -> None:
        if root is None:
            root = self.resource_folder(default_root()) / "val2017"
        super().__init__(root, transforms, transform, target_transform)
        coco_dir = self.root.parent
        ann_path = Path(annFile).expanduser() if annFile is not None else coco_dir / "annotations" / self._default_ann
        if download:
            images, annotations = (RawFile(r, coco_dir) for r in self.resources)
            extracted_folder("COCO", annotations, coco_dir, coco_dir / "annotations", download=True)
            extracted_folder("COCO", images, coco_dir, coco_dir / "val2017", download=True)
        missing = [(p, r) for p, r, ok in ((self.root, self.resources[0], self.root.is_dir()),
                                           (ann_path, self.resources[1], ann_path.is_file())) if not ok]
        if missing:
            lines = [f"  {p}  <- extract {r.url} into {coco_dir}" for p, r in missing]
            raise DatasetNotFoundError(
                "COCO: dataset not found. Pass download=True (2017 validation images and annotations), or put "
                "these in place:\n" + "\n".join(lines)
            )
        self.annFile = str(ann_path)
        self.coco = COCO(ann_path)
        self.ids = image_ids(self.coco, ann_path)

    @classmethod
    def resource_folder(cls, root: Path) -> Path:
        """Where the zips go and are extracted: ``root/coco``."""
        return Path(root) / "coco"

    @property
    def classes(self) -> list[str]:
        """Category names in id order."""
        return [self.coco.cats[i]["name"] for i in sorted(self.coco.cats)]

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Category name -> COCO category id (ids are not contiguous: 1..90 with gaps)."""
        return {self.coco.cats[i]["name"]: i for i in sorted(self.coco.cats)}

    def _load_image(self, id: int) -> Any:
        return pil_loader(self.root / self.coco.loadImgs(id)[0]["file_name"])

    def _load_target(self, id: int) -> Any:
        return self.coco.loadAnns(self.coco.getAnnIds(id))

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(image, target)`` for the ``index``-th image id, after ``transforms``."""
        if not isinstance(index, int):
            raise ArgumentError(f"Index must be of type integer, got {type(index).__name__} instead.")
        id = self.ids[index]
        image, target = self._load_image(id), self._load_target(id)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def __len__(self) -> int:
        return len(self.ids)


@register_dataset
class CocoCaptions(CocoDetection):
    """COCO captions: ``ds[i]`` is ``(image (H, W, 3) uint8 ndarray, [caption str, ...])``."""

    _default_ann = "captions_val2017.json"

    def _load_target(self, id: int) -> list[str]:
        return [ann["caption"] for ann in super()._load_target(id)]
