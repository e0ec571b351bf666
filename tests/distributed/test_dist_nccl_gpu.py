"""The "nccl" backend on one GPU (a world of one process: NCCL refuses two ranks on one device). Skipped without
a GPU; a multi-GPU machine runs the same collectives across GPUs with `hubkit run --launcher local --nproc N`."""

import numpy as np
import pytest

import hubkit
import hubkit.distributed as dist
import hubkit.nn.functional as F
from hubkit import nn, optim
from hubkit.errors import ArgumentError
from hubkit.nn.parallel import DistributedDataParallel

pytestmark = [pytest.mark.gpu, pytest.mark.distributed]


@pytest.fixture
def nccl_world():
    pytest.importorskip("cupy.cuda.nccl")
    dist.init_process_group("nccl", rank=0, world_size=1, timeout=60)
    yield
    dist.destroy_process_group()


def test_collectives_on_cuda_tensors(nccl_world):
    assert dist.get_backend() == "nccl" and dist.get_world_size() == 1
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX, dist.ReduceOp.MIN, dist.ReduceOp.PRODUCT):
        t = hubkit.tensor(x, device="cuda")
        dist.all_reduce(t, op=op)
        np.testing.assert_array_equal(t.cpu().numpy(), x)
    view = hubkit.tensor(x, device="cuda").t()
    dist.all_reduce(view, async_op=True).wait()
    np.testing.assert_array_equal(view.cpu().numpy(), x.T)
    flags = hubkit.tensor([True, False], device="cuda")
    dist.all_reduce(flags)
    assert flags.cpu().numpy().tolist() == [True, False]
    t = hubkit.tensor(x, device="cuda")
    dist.broadcast(t, src=0)
    out = [hubkit.zeros(3, 4, device="cuda")]
    dist.all_gather(out, t)
    np.testing.assert_array_equal(out[0].cpu().numpy(), x)
    result = hubkit.zeros(3, 4, device="cuda")
    dist.reduce_scatter(result, [t])
    np.testing.assert_array_equal(result.cpu().numpy(), x)
    objects = [None]
    dist.all_gather_object(objects, {"a": [1, 2]})
    assert objects == [{"a": [1, 2]}]
    items = ["x", 3]
    dist.broadcast_object_list(items)
    assert items == ["x", 3]
    dist.barrier()
    group = dist.new_group([0])
    dist.all_reduce(t, group=group)
    with pytest.raises(ArgumentError, match="CUDA"):
        dist.all_reduce(hubkit.zeros(2))


def test_ddp_step_on_the_gpu_equals_a_plain_step(nccl_world):
    hubkit.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)).to("cuda")
    reference = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)).to("cuda")
    reference.load_state_dict(model.state_dict())
    ddp = DistributedDataParallel(model, device_ids=[0], bucket_cap_mb=0.0005)
    x = hubkit.randn(2, 1, 8, 8, device="cuda")
    y = hubkit.tensor([0, 2], device="cuda")
    for net in (ddp, reference):
        opt = optim.SGD(net.parameters(), lr=0.1)
        F.cross_entropy(net(x), y).backward()
        opt.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.cpu().numpy(), q.cpu().numpy(), atol=1e-6, err_msg=name)
