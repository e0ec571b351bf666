"""DistributedSampler hands each rank exactly the indices torch's does, for the same seed and epoch."""

import pytest

from hubkit.data import DistributedSampler
from hubkit.data.sampler import torch_randperm
from hubkit.errors import ArgumentError


def test_shuffled_shards_are_torchs_pinned_values():
    # the values torch 2.14 gives for the same arguments
    assert torch_randperm(10, 0) == [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]
    assert [list(DistributedSampler(range(10), 3, r, seed=7)) for r in range(3)] == [
        [5, 4, 9, 2], [0, 1, 6, 5], [3, 7, 8, 0]]
    samplers = [DistributedSampler(range(11), 2, r, seed=7, drop_last=True) for r in range(2)]
    for s in samplers:
        s.set_epoch(3)
    assert [list(s) for s in samplers] == [[10, 8, 1, 2, 9], [6, 0, 3, 7, 5]]


def test_rank_and_world_size_come_from_the_initialized_group(monkeypatch):
    import hubkit.distributed as dist

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ArgumentError, match="init_process_group"):
        DistributedSampler(range(4))
    pytest.importorskip("mpi4py")
    dist.init_process_group("mpi", timeout=10)
    try:
        s = DistributedSampler(range(4), shuffle=False)
        assert (s.num_replicas, s.rank, list(s)) == (1, 0, [0, 1, 2, 3])
    finally:
        dist.destroy_process_group()


@pytest.mark.parity
@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (11, 2, True), (2, 5, False),
                                                    (100, 4, False), (1000, 3, True)])
@pytest.mark.parametrize("seed, epoch", [(0, 0), (7, 3), (2**40 + 5, 1)])
def test_shuffled_indices_equal_torchs_for_the_same_seed_and_epoch(n, replicas, drop_last, seed, epoch):
    import torch.utils.data as tud

    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=True, seed=seed, drop_last=drop_last)
        theirs = tud.DistributedSampler(range(n), replicas, rank, shuffle=True, seed=seed, drop_last=drop_last)
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)


@pytest.mark.parity
@pytest.mark.parametrize("n", [0, 1, 2, 17, 5000])
def test_randperm_equals_torch_randperm_with_a_seeded_generator(n):
    import torch

    for seed in (0, 1, 123456789, -3):
        expected = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        assert torch_randperm(n, seed) == expected
