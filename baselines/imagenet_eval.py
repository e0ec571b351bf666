"""Top-1/top-5 accuracy of a pretrained vision model on the ImageNet validation set you provide.

    python -m hubkit.baselines.imagenet_eval --model resnet18 --data-root /data/imagenet
    python -m hubkit.baselines.imagenet_eval --model resnet50.IMAGENET1K_V2 --data-root /data/imagenet/val

``--data-root`` is either a folder in ImageFolder layout (``<root>/<wnid>/*.JPEG``, the 1,000 WordNet
ids, whose sorted order is the class index order) or a folder with the official archives
``ILSVRC2012_img_val.tar`` and ``ILSVRC2012_devkit_t12.tar.gz`` (``hubkit.datasets.ImageNet`` sorts
them into that layout once). Images are decoded with Pillow and preprocessed with the weights' own
transforms (``hubkit.get_weights(name).transforms()``), as torchvision evaluated them; the published
numbers are the registry's (torchvision's) for those weights, e.g. resnet18 IMAGENET1K_V1: 69.758 / 89.078.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hubkit.baselines._common import Baseline, Outcome, resolve_device, run_cli

BASELINE = Baseline(
    name="imagenet_eval",
    task="ImageNet-1K validation accuracy of a pretrained zoo model",
    metric="acc@1 (%)",
    published=None,
    source="the model's registry entry (torchvision's published metrics for the weights)",
    lower_is_better=False,
    defaults={"epochs": 0, "batch_size": 64, "lr": 0.0},
    needs="the ImageNet validation images (ImageFolder layout, or the official val tarball + devkit)",
)

VAL_IMAGES = 50000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="resnet18", help="a registered vision model, optionally NAME.TAG")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (not the published protocol)")


def pil_image(path: str) -> Any:
    """Decode as torchvision's default loader does: a PIL image converted to RGB."""
    from PIL import Image

    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def dataset(root: Path, transform: Any) -> Any:
    from hubkit.datasets import ImageFolder, ImageNet

    if (root / "ILSVRC2012_devkit_t12.tar.gz").exists() or (root / "meta.bin").exists():
        return ImageNet(root, split="val", transform=transform, loader=pil_image)
    return ImageFolder(root, transform=transform, loader=pil_image, allow_empty=True)


def run(args: argparse.Namespace) -> Outcome:
    import hubkit
    from hubkit.data import DataLoader, Subset
    from hubkit.errors import ArgumentError
    from hubkit.train.metrics import Accuracy

    if args.data_root is None:
        raise ArgumentError(f"imagenet_eval needs --data-root: {BASELINE.needs}")
    weights = hubkit.get_weights(args.model)
    published = weights.meta.get("_metrics", {}).get("ImageNet-1K", {})
    data = dataset(Path(args.data_root), weights.transforms())
    if len(data.classes) != 1000:
        raise ArgumentError(f"{args.data_root} has {len(data.classes)} classes; ImageNet-1K has 1000 (one folder "
                            "per WordNet id)")
    if args.limit is not None:
        data = Subset(data, range(min(args.limit, len(data))))
    model = hubkit.load(args.model, pretrained=True, device=resolve_device(args.device))
    top1, top5 = Accuracy(), Accuracy(top_k=5)
    loader = DataLoader(data, batch_size=args.batch_size, num_workers=args.num_workers)
    with hubkit.no_grad():
        for images, labels in loader:
            logits = model(images.to(model_device(model)))
            top1.update(logits, labels)
            top5.update(logits, labels)
    acc1, acc5 = 100 * top1.compute(), 100 * top5.compute()
    protocol = "full" if top1.total == VAL_IMAGES else f"{top1.total} of the {VAL_IMAGES} validation images"
    return Outcome(acc1, {"acc@1": acc1, "acc@5": acc5, "images": top1.total,
                          "published_acc@1": published.get("acc@1"), "published_acc@5": published.get("acc@5"),
                          "weights": weights.name}, protocol)


def model_device(model: Any) -> Any:
    return next(iter(model.parameters())).device


def main(argv: list[str] | None = None) -> int:
    return run_cli(BASELINE, run, argv, add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
