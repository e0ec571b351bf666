"""Regenerate zoo/vision/imagenet_categories.json from torchvision's weight metadata.

The 1000 ImageNet-1K class names are data: this script was run once with torchvision 0.29.1
installed and its output is committed. Run it again only to check the file against a newer
torchvision:

    python scripts/gen_imagenet_categories.py            # rewrites the JSON
    python scripts/gen_imagenet_categories.py --check    # exits 1 if the JSON differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "zoo" / "vision" / "imagenet_categories.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()

    from torchvision.models import ResNet18_Weights

    categories = list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    text = json.dumps(categories, indent=0, ensure_ascii=False) + "\n"
    if args.check:
        same = TARGET.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{TARGET} differs from torchvision's categories")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {len(categories)} names to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
