"""Samplers: orders, counts, seeding and argument checks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import hubkit
from hubkit.data import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from hubkit.errors import ArgumentError, ArgumentTypeError


def test_sequential_sampler_visits_every_index_in_order():
    assert list(SequentialSampler(range(5))) == [0, 1, 2, 3, 4]
    assert len(SequentialSampler(range(5))) == 5


def test_random_sampler_is_a_permutation_reproducible_from_its_generator():
    a = list(RandomSampler(range(50), generator=hubkit.Generator(3)))
    b = list(RandomSampler(range(50), generator=hubkit.Generator(3)))
    assert sorted(a) == list(range(50))
    assert a == b
    assert a != list(range(50))


def test_random_sampler_draws_a_new_order_each_epoch_from_the_same_generator():
    sampler = RandomSampler(range(50), generator=hubkit.Generator(3))
    assert list(sampler) != list(sampler)


def test_random_sampler_without_generator_follows_the_global_seed():
    hubkit.manual_seed(11)
    a = list(RandomSampler(range(30)))
    hubkit.manual_seed(11)
    b = list(RandomSampler(range(30)))
    assert a == b


def test_random_sampler_num_samples_beyond_length_repeats_whole_permutations():
    drawn = list(RandomSampler(range(4), num_samples=10, generator=hubkit.Generator(0)))
    assert len(drawn) == 10
    assert sorted(drawn[:4]) == sorted(drawn[4:8]) == [0, 1, 2, 3]
    assert len(set(drawn[8:])) == 2


def test_random_sampler_with_replacement_draws_num_samples_in_range():
    sampler = RandomSampler(range(3), replacement=True, num_samples=10_000, generator=hubkit.Generator(0))
    drawn = list(sampler)
    assert len(drawn) == len(sampler) == 10_000
    counts = Counter(drawn)
    assert set(counts) == {0, 1, 2}
    assert all(3000 < c < 3700 for c in counts.values())


def test_random_sampler_checks_its_arguments():
    with pytest.raises(ArgumentTypeError):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ArgumentError):
        RandomSampler(range(3), num_samples=0)


def test_subset_random_sampler_permutes_only_the_given_indices():
    drawn = list(SubsetRandomSampler([10, 20, 30, 40], generator=hubkit.Generator(1)))
    assert sorted(drawn) == [10, 20, 30, 40]


def test_weighted_sampler_never_draws_zero_weight_and_follows_proportions():
    sampler = WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=20_000, generator=hubkit.Generator(0))
    counts = Counter(sampler)
    assert counts[0] == 0
    assert 0.72 < counts[2] / 20_000 < 0.78


def test_weighted_sampler_without_replacement_draws_distinct_indices():
    drawn = list(WeightedRandomSampler([1, 2, 3, 4, 0], 4, replacement=False, generator=hubkit.Generator(0)))
    assert sorted(drawn) == [0, 1, 2, 3]


def test_weighted_sampler_rejects_bad_weights_and_counts():
    with pytest.raises(ArgumentError, match="1-d"):
        WeightedRandomSampler(np.ones((2, 2)), 3)
    with pytest.raises(ArgumentError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 3)
    with pytest.raises(ArgumentError, match="at most 1"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
    with pytest.raises(ArgumentError):
        WeightedRandomSampler([1.0], 0)


def test_batch_sampler_keeps_or_drops_the_short_last_batch():
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]
    assert list(BatchSampler(range(5), 2, True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, False)) == 3
    assert len(BatchSampler(range(5), 2, True)) == 2
    with pytest.raises(ArgumentError):
        BatchSampler(range(5), 0, False)
    with pytest.raises(ArgumentTypeError):
        BatchSampler(range(5), 2, None)


def test_distributed_sampler_shards_cover_the_dataset_with_wraparound_padding():
    shards = [list(DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    dropped = [list(DistributedSampler(range(10), 3, r, shuffle=False, drop_last=True)) for r in range(3)]
    assert dropped == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


def test_distributed_sampler_shuffles_identically_on_every_rank_per_epoch():
    samplers = [DistributedSampler(range(20), num_replicas=2, rank=r, seed=5) for r in range(2)]
    epoch0 = [list(s) for s in samplers]
    assert sorted(epoch0[0] + epoch0[1]) == list(range(20))
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [list(s) for s in samplers]
    assert sorted(epoch1[0] + epoch1[1]) == list(range(20))
    assert epoch0 != epoch1


def test_distributed_sampler_reads_world_size_and_rank_from_the_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    s = DistributedSampler(range(6), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (2, 1, [1, 3, 5])
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(ArgumentError, match="WORLD_SIZE"):
        DistributedSampler(range(6), rank=0)
    with pytest.raises(ArgumentError, match=r"\[0, 1\]"):
        DistributedSampler(range(6), num_replicas=2, rank=2)


@pytest.mark.parity
@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (2, 5, False), (12, 4, True)])
def test_distributed_sampler_unshuffled_shards_match_torch(n, replicas, drop_last):
    import torch.utils.data as tud

    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = tud.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)
