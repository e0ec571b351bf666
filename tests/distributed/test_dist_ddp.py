"""DistributedDataParallel over 2 and 3 ranks equals single-process training on the concatenated batch."""

import numpy as np
import pytest
from distjob import explain, hubkit_run, needs_mpi

import hubkit
import hubkit.nn.functional as F
from hubkit import nn, optim

pytestmark = [pytest.mark.distributed, needs_mpi]

STEPS, BATCH = 20, 4


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5))


def data(seed, n):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((STEPS, n, 1, 8, 8)).astype(np.float32), rng.integers(0, 5, (STEPS, n))


@pytest.fixture(scope="module", params=[2, 3])
def job(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"ddp{request.param}")
    result = hubkit_run("ddp_train.py", request.param, out, STEPS, BATCH, timeout=240)
    assert result.returncode == 0, explain(result)
    return request.param, out


def test_every_rank_passes_its_own_checks(job):
    nproc, out = job
    assert sorted(p.name for p in out.glob("ok_*")) == [f"ok_{r}" for r in range(nproc)]


def test_twenty_steps_equal_single_process_training_on_the_concatenated_batch(job):
    nproc, out = job
    x, y = data(0, nproc * BATCH)
    hubkit.manual_seed(0)
    model = small_cnn()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(STEPS):
        opt.zero_grad()
        F.cross_entropy(model(hubkit.from_numpy(x[step])), hubkit.from_numpy(y[step])).backward()
        opt.step()
    trained = np.load(out / "train.npz")
    for name, p in model.named_parameters():
        np.testing.assert_allclose(trained[name], p.numpy(), rtol=0, atol=1e-6, err_msg=name)


def test_no_sync_accumulation_equals_one_larger_batch(job):
    nproc, out = job
    x, y = data(1, 2 * nproc * BATCH)
    hubkit.manual_seed(0)
    model = small_cnn()
    opt = optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        opt.zero_grad()
        # each rank summed two micro-batch means; DDP averaged over ranks: twice the mean of the whole batch
        (2 * F.cross_entropy(model(hubkit.from_numpy(x[step])), hubkit.from_numpy(y[step]))).backward()
        opt.step()
    trained = np.load(out / "nosync.npz")
    for name, p in model.named_parameters():
        np.testing.assert_allclose(trained[name], p.numpy(), rtol=0, atol=1e-6, err_msg=name)


def test_models_that_differ_across_ranks_are_refused_at_construction(tmp_path):
    result = hubkit_run("ddp_mismatch.py", 2, tmp_path, timeout=120)
    assert result.returncode == 0, explain(result)
    messages = [(tmp_path / f"error_{r}").read_text() for r in range(2)]
    for message in messages:
        assert "differs across ranks" in message
        assert "'0.weight' has shape (8, 4) on rank 0 but (9, 4) on rank 1" in message


def test_wrapping_needs_an_initialized_group_and_trainable_parameters():
    from hubkit.errors import DistributedError
    from hubkit.nn.parallel import DistributedDataParallel

    with pytest.raises(DistributedError, match="init_process_group"):
        DistributedDataParallel(nn.Linear(2, 2))
