"""ImageNet-1K facts shared by the vision zoo: class names and the torchvision weight-tag template."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from hubkit.hub.registry import Preprocessing, WeightAlias, WeightTag

from .presets import image_classification

TORCHVISION_BASE = "https://download.pytorch.org/models/"
TORCHVISION_SOURCE = "torchvision 0.29.1 (pytorch/vision), {enum}"
TORCHVISION_LICENSE = "BSD-3-Clause (pytorch/vision); trained on ImageNet-1K, whose terms of access apply"


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1K class names in torchvision's order (index = logit position)."""
    text = resources.files("hubkit.zoo.vision").joinpath("imagenet_categories.json").read_text(encoding="utf-8")
    names = tuple(json.loads(text))
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_categories.json holds {len(names)} names, expected 1000; reinstall hubkit")
    return names


def torchvision_tag(
    enum: str,
    tag: str,
    filename: str,
    *,
    acc1: float,
    acc5: float,
    num_params: int,
    gflops: float,
    file_size_mb: float,
    recipe: str,
    resize_size: int = 256,
    crop_size: int = 224,
    interpolation: str = "bilinear",
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
    min_size: tuple[int, int] = (1, 1),
    categories: bool = True,
    aliases: tuple[WeightAlias, ...] = (),
    license: str = TORCHVISION_LICENSE,
    model_kwargs: dict | None = None,
) -> WeightTag:
    """One row of torchvision's weight table: ``filename`` on download.pytorch.org, its ``-<hex>`` the sha256 prefix."""
    prefix = filename.rsplit("-", 1)[1].split(".pth")[0]
    pre = Preprocessing(crop_size=crop_size, resize_size=resize_size, interpolation=interpolation)
    if mean is not None:
        pre = Preprocessing(crop_size, resize_size, interpolation, mean, std or pre.std)
    return WeightTag(
        tag=tag,
        url=TORCHVISION_BASE + filename,
        sha256_prefix=prefix,
        num_params=num_params,
        preprocessing=pre,
        file_size_mb=file_size_mb,
        format="torch",
        license=license,
        source=TORCHVISION_SOURCE.format(enum=f"{enum}.{tag}"),
        recipe=recipe,
        categories=imagenet_categories if categories else None,
        metrics={"ImageNet-1K": {"acc@1": acc1, "acc@5": acc5}},
        gflops=gflops,
        min_size=min_size,
        aliases=aliases,
        model_kwargs=model_kwargs or {},
        transforms_factory=image_classification,
    )


def old_file(filename: str, *, hashed: bool = True, note: str = "") -> WeightAlias:
    """An earlier download.pytorch.org file of the same weights (``hashed``: its name's hex is a sha256 prefix)."""
    prefix = filename.rsplit("-", 1)[1].split(".pth")[0] if hashed else None
    return WeightAlias(
        url=TORCHVISION_BASE + filename,
        sha256_prefix=prefix,
        note=note or "pre-2021 file (legacy serialization), re-saved unchanged as the current file",
    )
