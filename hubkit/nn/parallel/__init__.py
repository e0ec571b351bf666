"""``hubkit.nn.parallel``: data-parallel training over hubkit.distributed (torch.nn.parallel's names)."""

from hubkit.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
