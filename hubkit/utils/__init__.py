"""``hubkit.utils``: where PyTorch code looks for ``torch.utils.data`` and torchvision's ``utils``.

``hubkit.utils.data`` is ``hubkit.data`` under torch's path (the same objects); ``make_grid`` and
``save_image`` are torchvision.utils'.
"""

from hubkit.utils import data
from hubkit.utils.image import make_grid, save_image

__all__ = ["data", "make_grid", "save_image"]
