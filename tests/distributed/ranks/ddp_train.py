"""DistributedDataParallel on every rank. Rank 0 writes OUT/train.npz and OUT/nosync.npz (parameters after
training, compared by the test with single-process training); every rank writes OUT/ok_<rank> when its own
checks pass. Usage: ddp_train.py OUT STEPS BATCH
"""

import copy
import sys
from pathlib import Path

import numpy as np

import hubkit
import hubkit.distributed as dist
import hubkit.nn.functional as F
from hubkit import nn, optim
from hubkit.errors import DistributedError
from hubkit.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi", timeout=60)
rank, size = dist.get_rank(), dist.get_world_size()
out, steps, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5))


def data(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, n, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, (steps, n))
    return x, y


def params(model):
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


# ---- training: every rank starts from its own random weights; DDP makes them rank 0's
x, y = data(0, size * batch)
hubkit.manual_seed(rank)
model = small_cnn()
ddp = DDP(model, bucket_cap_mb=0.0005)  # buckets of ~500 bytes: several buckets, launched as backward goes
assert len(ddp._buckets) > 1
opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
mine = slice(rank * batch, (rank + 1) * batch)
started_before_first_layer = []
for step in range(steps):
    opt.zero_grad()
    inputs = hubkit.from_numpy(x[step, mine]).requires_grad_()
    if step == 0:  # the input's gradient is final just before the first conv's: later buckets must be on the wire
        inputs.register_post_accumulate_grad_hook(lambda t: started_before_first_layer.append(ddp._next_bucket))
    loss = F.cross_entropy(ddp(inputs), hubkit.from_numpy(y[step, mine]))
    loss.backward()
    opt.step()
assert 1 <= started_before_first_layer[0] < len(ddp._buckets), started_before_first_layer
everyone = [None] * size
dist.all_gather_object(everyone, params(model))
for theirs in everyone:
    for name, value in theirs.items():
        np.testing.assert_array_equal(value, everyone[0][name], err_msg=f"rank {rank}: replicas diverged at {name}")
if rank == 0:
    np.savez(out / "train.npz", **params(model))

# ---- no_sync: two micro-batches per rank, the first accumulated locally
x2, y2 = data(1, 2 * size * batch)
hubkit.manual_seed(0)
model = small_cnn()
ddp = DDP(model)
opt = optim.SGD(ddp.parameters(), lr=0.1)
first = slice(2 * rank * batch, (2 * rank + 1) * batch)
second = slice((2 * rank + 1) * batch, (2 * rank + 2) * batch)
for step in range(3):
    opt.zero_grad()
    with ddp.no_sync():
        F.cross_entropy(ddp(hubkit.from_numpy(x2[step, first])), hubkit.from_numpy(y2[step, first])).backward()
    F.cross_entropy(ddp(hubkit.from_numpy(x2[step, second])), hubkit.from_numpy(y2[step, second])).backward()
    opt.step()
if rank == 0:
    np.savez(out / "nosync.npz", **params(model))


# ---- find_unused_parameters: head b is used on rank 1 only, head c nowhere
class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(6, 4)
        self.a = nn.Linear(4, 2)
        self.b = nn.Linear(4, 2)
        self.c = nn.Linear(4, 2)

    def forward(self, x, use_b):
        h = self.trunk(x).relu()
        return self.a(h) + self.b(h) if use_b else self.a(h)


hubkit.manual_seed(0)
heads = Heads()
ddp = DDP(heads, find_unused_parameters=True)
plain = copy.deepcopy(heads)
xs = hubkit.from_numpy(np.random.default_rng(10 + rank).standard_normal((3, 6)).astype(np.float32))
plain(xs, rank == 1).pow(2).sum().backward()
local = [None] * size
dist.all_gather_object(local, {n: None if p.grad is None else p.grad.numpy() for n, p in plain.named_parameters()})
ddp(xs, rank == 1).pow(2).sum().backward()
for name, p in heads.named_parameters():
    grads = [g[name] for g in local if g[name] is not None]
    if not grads:
        assert p.grad is None, f"{name}: unused on every rank, so its grad stays None"
    else:
        np.testing.assert_allclose(p.grad.numpy(), sum(grads) / size, rtol=1e-5, atol=1e-6, err_msg=name)

# ---- a parameter without a gradient and find_unused_parameters=False: the next forward says what to do
hubkit.manual_seed(0)
ddp = DDP(Heads())
ddp(xs, False).sum().backward()
try:
    ddp(xs, False)
except DistributedError as e:
    assert "find_unused_parameters=True" in str(e) and "'b.weight'" in str(e), str(e)
else:
    raise AssertionError("a forward after an unfinished reduction must raise")

# ---- state_dict: torch's 'module.' keys; either form loads
ddp = DDP(small_cnn())
state = ddp.state_dict()
assert all(k.startswith("module.") for k in state) and "module.4.weight" in state
bare = {k[len("module."):]: v.numpy() + 1.0 for k, v in state.items()}
ddp.load_state_dict(bare)
np.testing.assert_array_equal(ddp.module[4].weight.numpy(), bare["4.weight"])
ddp.load_state_dict({"module." + k: v - 1.0 for k, v in bare.items()})
np.testing.assert_allclose(ddp.module[4].weight.numpy(), bare["4.weight"] - 1.0)

# ---- buffers: rank 0's are sent before every forward
norm = nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3))
ddp = DDP(norm)
norm[1].running_mean.array[...] = rank + 1.0
ddp.eval()
ddp(xs)
np.testing.assert_array_equal(norm[1].running_mean.numpy(), np.full(3, 1.0, np.float32))

(out / f"ok_{rank}").write_text("ok")
