"""Image transforms with torchvision's names, arguments and arithmetic, written on numpy.

Images come in three forms, and each transform returns the form it was given:

- **ndarrays** ``(H, W)`` or ``(H, W, C)`` (what ``hubkit.datasets`` return), any dtype, uint8 usually
  (an ``(H, W, C)`` input stays 3-d: ``Grayscale()`` of ``(H, W, 3)`` is ``(H, W, 1)``);
- **hubkit Tensors** ``(..., C, H, W)`` (on the CPU), as torchvision takes torch tensors;
- **PIL images**, when Pillow is installed (palette and binary images are converted to ``RGB``/``L``).

``ToTensor`` / ``PILToTensor`` turn ndarrays and PIL images into ``(C, H, W)`` Tensors; ``Normalize``
takes float Tensors only, as in torchvision. The pixel arithmetic follows torchvision's tensor path
(``resize`` with antialiasing, ``rotate`` through a sampling grid, colour adjustments that truncate
to uint8), so results match torchvision on tensors to within one uint8 level (see the parity tests).
PIL images are resized and rotated by PIL itself, as torchvision does; the other operations use the
tensor arithmetic on them too (colour adjustments may then differ from torchvision's PIL path by
rounding).

Random transforms draw from hubkit's global generator (``hubkit.manual_seed``); in DataLoader
workers that generator is seeded per worker.

The package is laid out as torchvision's: the functions live in ``hubkit.transforms.functional``
(``import hubkit.transforms.functional as F``), the classes in ``hubkit.transforms.transforms``, and
both are exported here.

    from hubkit import transforms as T
    preprocess = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
"""

from hubkit.transforms import functional
from hubkit.transforms.functional import (
    InterpolationMode,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    center_crop,
    crop,
    get_dimensions,
    hflip,
    normalize,
    pad,
    pil_to_tensor,
    resize,
    resized_crop,
    rgb_to_grayscale,
    rotate,
    to_tensor,
    vflip,
)
from hubkit.transforms.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Grayscale,
    Lambda,
    Normalize,
    Pad,
    PILToTensor,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomVerticalFlip,
    Resize,
    ToTensor,
)

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Grayscale",
    "InterpolationMode",
    "Lambda",
    "Normalize",
    "PILToTensor",
    "Pad",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "ToTensor",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "center_crop",
    "crop",
    "get_dimensions",
    "hflip",
    "normalize",
    "pad",
    "pil_to_tensor",
    "resize",
    "resized_crop",
    "rgb_to_grayscale",
    "rotate",
    "to_tensor",
    "vflip",
]
