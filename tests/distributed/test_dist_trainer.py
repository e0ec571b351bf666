"""Trainer(strategy="ddp", devices=2), started as a plain `python train.py` like a Lightning user does."""

import numpy as np
import pytest
from distjob import explain, needs_mpi, python

import hubkit
import hubkit.nn.functional as F
from hubkit import nn, optim
from hubkit.data import DistributedSampler
from hubkit.errors import ArgumentError
from hubkit.train import Trainer

pytestmark = [pytest.mark.distributed, needs_mpi]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trainer_ddp")
    result = python("trainer_ddp.py", out, timeout=180)
    assert result.returncode == 0, explain(result)
    return out, result


def test_it_restarts_as_two_ranks_that_take_the_same_steps(run):
    out, _ = run
    assert (out / "done_0").read_text() == (out / "done_1").read_text() == "8"  # 2 epochs of 16 samples / 4


def test_training_equals_one_process_on_the_union_of_the_ranks_batches(run):
    out, _ = run
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1).astype(np.float32)
    hubkit.manual_seed(0)
    net = nn.Linear(3, 1)
    opt = optim.SGD(net.parameters(), lr=0.1)
    for epoch in range(2):
        shards = []
        for rank in range(2):
            sampler = DistributedSampler(range(32), 2, rank, shuffle=True, seed=0)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        for k in range(4):
            batch = shards[0][4 * k: 4 * k + 4] + shards[1][4 * k: 4 * k + 4]
            opt.zero_grad()
            F.mse_loss(net(hubkit.from_numpy(x[batch])), hubkit.from_numpy(y[batch])).backward()
            opt.step()
    trained = np.load(out / "params.npz")
    np.testing.assert_allclose(trained["net.weight"], net.weight.numpy(), atol=1e-6)
    np.testing.assert_allclose(trained["net.bias"], net.bias.numpy(), atol=1e-6)


def test_only_rank_zero_logs_prepares_data_and_writes_checkpoints(run):
    out, result = run
    assert (out / "prepared_0").exists() and not (out / "prepared_1").exists()
    assert [p.name for p in (out / "hubkit_logs").iterdir()] == ["version_0"]
    assert [p.name for p in (out / "hubkit_logs" / "version_0" / "checkpoints").iterdir()] == ["epoch=1-step=8.ckpt"]
    assert result.stderr.count("Total params") == 1


def test_devices_must_be_a_count_with_ddp_and_one_without():
    with pytest.raises(ArgumentError, match="strategy='ddp'"):
        Trainer(devices=2)
    with pytest.raises(ArgumentError, match="'auto'"):
        Trainer(strategy="ddp", devices=0)
