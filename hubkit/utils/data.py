"""``hubkit.utils.data``: ``hubkit.data`` under PyTorch's path ``torch.utils.data`` (the same objects)."""

from hubkit.data import *  # noqa: F403
from hubkit.data import __all__  # noqa: F401
