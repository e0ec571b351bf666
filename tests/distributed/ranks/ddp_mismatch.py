"""Rank 1 builds a wider layer than rank 0: DDP must refuse on every rank. Writes OUT/error_<rank>."""

import sys
from pathlib import Path

import hubkit.distributed as dist
from hubkit import nn
from hubkit.errors import DistributedError
from hubkit.nn.parallel import DistributedDataParallel

dist.init_process_group("mpi", timeout=30)
rank = dist.get_rank()
model = nn.Sequential(nn.Linear(4, 8 + rank), nn.Linear(8 + rank, 3))
try:
    DistributedDataParallel(model)
except DistributedError as e:
    Path(sys.argv[1], f"error_{rank}").write_text(str(e))
else:
    raise AssertionError("DDP accepted models of different shapes")
dist.barrier()  # the group still works: the refusal happened before any parameter was sent
