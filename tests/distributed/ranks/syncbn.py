"""SyncBatchNorm on every rank. Each case writes OUT/<case>_<rank>.npz with this rank's inputs, outputs, gradients
and the layer's state after training; tests/distributed/test_dist_syncbn.py compares them with one process running
BatchNorm on the concatenated batch. Every rank writes OUT/ok_<rank> when it is done. Usage: syncbn.py OUT
"""

import sys
from pathlib import Path

import numpy as np

import hubkit
import hubkit.distributed as dist
import hubkit.nn.functional as F
from hubkit import nn, optim
from hubkit.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi", timeout=60)
rank, size = dist.get_rank(), dist.get_world_size()
out = Path(sys.argv[1])


def run_case(name, sizes, channels, tail, dtype, seed, group=None, steps=2, **options):
    """Train a SyncBatchNorm for ``steps`` steps on this rank's batch of ``sizes[rank]`` samples (loss
    ``sum(y * g)``, a fixed random cotangent per step), then run it once in eval mode; save everything."""
    shared = np.random.default_rng(seed)  # the same weights on every rank
    mine = np.random.default_rng([seed, rank])
    layer = nn.SyncBatchNorm(channels, process_group=group, dtype=dtype, **options)
    saved = {}
    if layer.weight is not None:
        layer.weight.array[...] = shared.uniform(0.5, 1.5, channels)
        saved["weight"] = layer.weight.numpy().copy()
    if layer.bias is not None:
        layer.bias.array[...] = shared.standard_normal(channels)
        saved["bias"] = layer.bias.numpy().copy()
    shape = (sizes[rank], channels, *tail)
    for step in range(steps):
        # an offset mean, so a sum-of-squares variance would lose digits where the pairwise combination does not
        x = hubkit.from_numpy((mine.standard_normal(shape) * 2 + 3).astype(dtype)).requires_grad_()
        g = hubkit.from_numpy(mine.standard_normal(shape).astype(dtype))
        layer.zero_grad()
        y = layer(x)
        (y * g).sum().backward()
        saved.update({f"x{step}": x.numpy(), f"g{step}": g.numpy(), f"y{step}": y.numpy(),
                      f"gx{step}": x.grad.numpy()})
        for p in ("weight", "bias"):
            if getattr(layer, p) is not None:
                saved[f"g{p}{step}"] = getattr(layer, p).grad.numpy()
    for buffer in ("running_mean", "running_var", "num_batches_tracked"):
        if getattr(layer, buffer) is not None:
            saved[buffer] = getattr(layer, buffer).numpy()
    layer.eval()
    x_eval = mine.standard_normal(shape).astype(dtype)
    saved.update(x_eval=x_eval, y_eval=layer(hubkit.from_numpy(x_eval)).numpy())
    np.savez(out / f"{name}_{rank}.npz", **saved)


run_case("uneven_4d", [3, 1, 4], 3, (2, 3), np.float64, 1)
run_case("float32_3d", [2, 5, 1], 4, (4,), np.float32, 2, momentum=None)
run_case("empty_rank_2d", [4, 0, 3], 5, (), np.float64, 3, affine=False)
run_case("untracked_5d", [2, 1, 2], 2, (2, 2, 2), np.float64, 4, track_running_stats=False, bias=False)
# on 3 ranks, 0 and 2 synchronize with each other; on 2, rank 0 is a group of one; rank 1 is outside the group
# (it gets NON_GROUP_MEMBER) and normalizes alone
part = dist.new_group([0, 2] if size == 3 else [0])
assert (part is dist.GroupMember.NON_GROUP_MEMBER) == (rank == 1)
run_case("subgroup", [2, 3, 4], 3, (5,), np.float64, 5, group=part)


# ---- a CNN converted with convert_sync_batchnorm, trained under DDP (equal batches, so DDP's average is the
# gradient of the mean loss over the concatenated batch)
def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


STEPS, BATCH = 3, 2
data = np.random.default_rng(6)
x_all = data.standard_normal((STEPS, size * BATCH, 1, 8, 8)).astype(np.float32)
y_all = data.integers(0, 3, (STEPS, size * BATCH))
hubkit.manual_seed(0)
model = nn.SyncBatchNorm.convert_sync_batchnorm(small_cnn())
assert isinstance(model[1], nn.SyncBatchNorm)
initial = {k: v.numpy().copy() for k, v in model.state_dict().items()}
ddp = DDP(model)
opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
mine = slice(rank * BATCH, (rank + 1) * BATCH)
for step in range(STEPS):
    opt.zero_grad()
    F.cross_entropy(ddp(hubkit.from_numpy(x_all[step, mine])), hubkit.from_numpy(y_all[step, mine])).backward()
    opt.step()
state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
everyone = [None] * size
dist.all_gather_object(everyone, state)
for theirs in everyone:
    for key, value in theirs.items():
        np.testing.assert_array_equal(value, state[key], err_msg=f"rank {rank}: replicas diverged at {key}")
if rank == 0:
    np.savez(out / "ddp.npz", x=x_all, y=y_all, **{f"initial.{k}": v for k, v in initial.items()},
             **{f"trained.{k}": v for k, v in state.items()})

(out / f"ok_{rank}").write_text("ok")
dist.destroy_process_group()
