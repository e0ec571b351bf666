"""Every collective of hubkit.distributed on every rank, checked against numpy. Writes OUT/ok_<rank> when all pass.

Each rank's input is drawn from a generator seeded by its rank, so every rank can compute what the others
sent and therefore the expected result.
"""

import sys
from pathlib import Path

import numpy as np

import hubkit
import hubkit.distributed as dist
from hubkit.errors import ArgumentError

dist.init_process_group("mpi", timeout=60)
rank, size = dist.get_rank(), dist.get_world_size()
out = Path(sys.argv[1])


def data(r, shape=(3, 4), dtype=np.float32):
    values = np.random.default_rng(100 + r).standard_normal(shape) * 4
    return values.astype(dtype) if np.dtype(dtype).kind == "f" else np.round(values).astype(dtype)


def everyone(shape=(3, 4), dtype=np.float32):
    return np.stack([data(r, shape, dtype) for r in range(size)])


def close(a, b, what):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=1e-6,
                               atol=1e-6, err_msg=f"rank {rank}: {what}")


assert dist.is_initialized() and dist.get_backend() == "mpi"
assert dist.get_local_rank() == rank  # one machine: local rank = rank

# all_reduce: every op, several dtypes, in place
numpy_ops = {dist.ReduceOp.SUM: np.sum, dist.ReduceOp.PRODUCT: np.prod, dist.ReduceOp.MAX: np.max,
             dist.ReduceOp.MIN: np.min, dist.ReduceOp.AVG: np.mean}
for dtype in (np.float32, np.float64, np.int32, np.int64):
    for op, reduce in numpy_ops.items():
        if op is dist.ReduceOp.AVG and np.dtype(dtype).kind != "f":
            continue
        t = hubkit.from_numpy(data(rank, dtype=dtype))
        before = t.array
        assert dist.all_reduce(t, op=op) is None
        assert t.array is before, "all_reduce must work in place"
        expected = reduce(everyone(dtype=dtype), axis=0)
        close(t.numpy(), expected, f"all_reduce {op.name} {np.dtype(dtype)}")

# a non-contiguous view is reduced in place too
base = hubkit.from_numpy(data(rank, (4, 3)).copy())
view = base.t()
dist.all_reduce(view)
close(base.numpy(), everyone((4, 3)).sum(0), "all_reduce of a transposed view")

# bool: SUM is logical or, MIN logical and
flags = hubkit.tensor([rank == 0, True, False])
dist.all_reduce(flags)
assert flags.numpy().tolist() == [True, True, False]
flags = hubkit.tensor([rank == 0, True, False])
dist.all_reduce(flags, op=dist.ReduceOp.MIN)
assert flags.numpy().tolist() == [size == 1, True, False]

# broadcast from the last rank
t = hubkit.from_numpy(data(rank))
dist.broadcast(t, src=size - 1)
close(t.numpy(), data(size - 1), "broadcast")

# all_gather into a list, all_gather_into_tensor
tensors = [hubkit.zeros(3, 4) for _ in range(size)]
dist.all_gather(tensors, hubkit.from_numpy(data(rank)))
for r in range(size):
    close(tensors[r].numpy(), data(r), f"all_gather[{r}]")
gathered = hubkit.zeros(size * 3, 4)
dist.all_gather_into_tensor(gathered, hubkit.from_numpy(data(rank)))
close(gathered.numpy(), everyone().reshape(size * 3, 4), "all_gather_into_tensor")

# reduce_scatter: rank r gets the sum over ranks of their r-th input
inputs = [hubkit.from_numpy(data(rank * 10 + j)) for j in range(size)]
result = hubkit.zeros(3, 4)
dist.reduce_scatter(result, inputs)
close(result.numpy(), sum(data(r * 10 + rank) for r in range(size)), "reduce_scatter")
result = hubkit.zeros(3, 4)
dist.reduce_scatter_tensor(result, hubkit.from_numpy(np.concatenate([data(rank * 10 + j) for j in range(size)])),
                           op=dist.ReduceOp.MAX)
close(result.numpy(), np.max([data(r * 10 + rank) for r in range(size)], axis=0), "reduce_scatter_tensor MAX")

# object collectives: objects of different sizes and types
objects = [None] * size
dist.all_gather_object(objects, {"rank": rank, "payload": "x" * (1000 * rank), "array": data(rank)})
for r, obj in enumerate(objects):
    assert obj["rank"] == r and len(obj["payload"]) == 1000 * r
    close(obj["array"], data(r), "all_gather_object")
items = [{"lr": 0.1}, "hello", 3] if rank == 1 % size else [None, None, None]
dist.broadcast_object_list(items, src=1 % size)
assert items == [{"lr": 0.1}, "hello", 3]

# async handles
t = hubkit.from_numpy(data(rank))
work = dist.all_reduce(t, async_op=True)
assert work.wait() is True and work.is_completed()
close(t.numpy(), everyone().sum(0), "async all_reduce")
assert dist.barrier(async_op=True).wait()
dist.barrier()

# a group of the first and the last rank; the others are not members
members = sorted({0, size - 1})
group = dist.new_group(members)
if rank in members:
    t = hubkit.from_numpy(data(rank))
    dist.all_reduce(t, group=group)
    close(t.numpy(), sum(data(r) for r in members), "group all_reduce")
    assert dist.get_rank(group) == members.index(rank) and dist.get_world_size(group) == len(members)
else:
    assert group is dist.GroupMember.NON_GROUP_MEMBER and dist.get_rank(group) == -1

# mistakes a user makes are errors that say so, raised before anything is sent
for call, fragment in [
    (lambda: dist.all_reduce(hubkit.tensor([1, 2]), op=dist.ReduceOp.AVG), "AVG needs a floating-point"),
    (lambda: dist.all_gather([hubkit.zeros(3, 4)], hubkit.zeros(3, 4)) if size > 1 else dist.all_gather(
        [], hubkit.zeros(1)), "one tensor per rank"),
    (lambda: dist.all_gather_object([None] * (size + 1), 1), "one slot per rank"),
    (lambda: dist.broadcast(hubkit.zeros(1), src=size), "not a member"),
    (lambda: dist.all_reduce(np.zeros(3)), "hubkit Tensors"),
]:
    try:
        call()
    except ArgumentError as e:
        assert fragment in str(e), (fragment, str(e))
    else:
        raise AssertionError(f"expected an ArgumentError mentioning {fragment!r}")

dist.destroy_process_group()
assert not dist.is_initialized()
(out / f"ok_{rank}").write_text("ok")
