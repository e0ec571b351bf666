"""DDP training where rank 1 fails mid-step. Usage: fault.py OUT MODE TIMEOUT

MODE: raise (rank 1 raises before its backward), kill (rank 1 is killed by SIGKILL there), stall (rank 1
sleeps longer than the timeout there). The other ranks are inside backward's gradient all-reduce when that
happens; each writes the error it got to OUT/error_<rank>, then fails.
"""

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import hubkit
import hubkit.distributed as dist
import hubkit.nn.functional as F
from hubkit import nn, optim
from hubkit.nn.parallel import DistributedDataParallel as DDP

out, mode, timeout = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
dist.init_process_group("mpi", timeout=timeout)
rank = dist.get_rank()
hubkit.manual_seed(0)
ddp = DDP(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)))
opt = optim.SGD(ddp.parameters(), lr=0.1)
rng = np.random.default_rng(rank)
for step in range(5):
    opt.zero_grad()
    loss = F.cross_entropy(ddp(hubkit.from_numpy(rng.standard_normal((4, 8)).astype(np.float32))),
                           hubkit.from_numpy(rng.integers(0, 3, 4)))
    if step == 2 and rank == 1:
        if mode == "raise":
            raise RuntimeError("rank 1 failed in the middle of step 2")
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "stall":
            time.sleep(timeout + 1)
    try:
        loss.backward()
    except Exception as e:
        (out / f"error_{rank}").write_text(f"{type(e).__name__}\n{e}")
        raise
    opt.step()
