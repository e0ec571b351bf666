"""DataLoader: batching, sampling, seeding, worker processes, errors and cleanup."""

from __future__ import annotations

import os
import pickle
import random
import time

import numpy as np
import pytest

import hubkit
from hubkit.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
    get_worker_info,
)
from hubkit.errors import ArgumentError, DataLoaderError, HubkitError
from hubkit.tensor import Tensor


class Indexed(Dataset):
    """Sample i is (a 2x2 uint8 image filled with i % 256, i)."""

    def __init__(self, n: int = 10) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return np.full((2, 2), i % 256, dtype=np.uint8), i


class WhoAmI(Dataset):
    """Sample i records which process produced it and the worker's seed and random draws."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        info = get_worker_info()
        return {
            "index": i,
            "pid": os.getpid(),
            "worker": -1 if info is None else info.id,
            "num_workers": -1 if info is None else info.num_workers,
            "seed": -1 if info is None else info.seed,
            "is_copy": -1 if info is None else int(isinstance(info.dataset, WhoAmI)),
            "draws": np.array(
                [random.random(), np.random.random_sample(), hubkit.random.get_rng().random()]
            ),
        }


class Failing(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        if i == 5:
            return _explode(i)
        return i


def _explode(i: int):
    raise ZeroDivisionError(f"sample {i} is broken")


class MissingKey(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        return {}["absent"]


class Slow(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        time.sleep(30)
        return i


class Dies(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        os._exit(3)


class Unpicklable(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        return i

    @staticmethod
    def collate(batch):
        return lambda: batch  # a lambda cannot travel between processes


class Jittery(Dataset):
    """Later samples are faster, so worker results arrive out of order."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int):
        time.sleep(0.002 * (12 - i))
        return i


class Stream(IterableDataset):
    def __init__(self, n: int, shard: bool) -> None:
        self.n, self.shard = n, shard

    def __iter__(self):
        info = get_worker_info()
        if self.shard and info is not None:
            return iter(range(info.id, self.n, info.num_workers))
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


class WithGetitems(Indexed):
    calls: list = []

    def __getitems__(self, indices):
        return [(np.zeros((2, 2), np.uint8), 100 + i) for i in indices]


def _labels(loader) -> list[list[int]]:
    return [batch[1].numpy().tolist() for batch in loader]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# ---------------------------------------------------------------- batching and sampling


def test_batches_are_collated_in_order_with_a_short_last_batch():
    loader = DataLoader(Indexed(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    images, labels = batches[0]
    assert isinstance(images, Tensor) and images.shape == (4, 2, 2) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_drop_last_drops_the_short_batch():
    loader = DataLoader(Indexed(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batch_size_none_yields_converted_single_samples():
    samples = list(DataLoader(Indexed(3), batch_size=None))
    assert len(samples) == 3
    image, label = samples[1]
    assert isinstance(image, Tensor) and image.shape == (2, 2) and label == 1


def test_custom_collate_fn_receives_the_list_of_samples():
    loader = DataLoader(Indexed(5), batch_size=2, collate_fn=lambda batch: [label for _, label in batch])
    assert list(loader) == [[0, 1], [2, 3], [4]]


def test_sampler_and_batch_sampler_decide_the_order():
    loader = DataLoader(Indexed(6), batch_size=2, sampler=[5, 3, 1, 0])
    assert _labels(loader) == [[5, 3], [1, 0]]
    loader = DataLoader(Indexed(6), batch_sampler=[[4, 2], [0], [1, 3, 5]])
    assert _labels(loader) == [[4, 2], [0], [1, 3, 5]]
    assert len(loader) == 3


def test_shuffle_with_a_seeded_generator_is_reproducible_and_reshuffles_each_epoch():
    def epochs(seed):
        loader = DataLoader(Indexed(20), batch_size=5, shuffle=True, generator=hubkit.Generator(seed))
        return [sum(_labels(loader), []) for _ in range(2)]

    first, second = epochs(7)
    assert sorted(first) == list(range(20))
    assert first != second
    assert epochs(7) == [first, second]
    assert epochs(8) != [first, second]


def test_dataset_getitems_fetches_a_batch_in_one_call():
    assert _labels(DataLoader(WithGetitems(4), batch_size=2)) == [[100, 101], [102, 103]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_sampler": [[0]], "batch_size": 2}, "mutually exclusive"),
        ({"batch_sampler": [[0]], "shuffle": True}, "mutually exclusive"),
        ({"sampler": [0, 1], "shuffle": True}, "mutually exclusive"),
        ({"batch_size": None, "drop_last": True}, "drop_last"),
        ({"num_workers": -1}, "num_workers"),
        ({"timeout": -1}, "timeout"),
        ({"persistent_workers": True}, "num_workers > 0"),
        ({"num_workers": 2, "prefetch_factor": 0}, "prefetch_factor"),
    ],
)
def test_inconsistent_arguments_are_rejected(kwargs, match):
    with pytest.raises(ArgumentError, match=match) as info:
        DataLoader(Indexed(4), **kwargs)
    assert isinstance(info.value, (HubkitError, ValueError))


def test_iterable_dataset_takes_no_shuffle_or_sampler():
    with pytest.raises(ArgumentError, match="shuffle"):
        DataLoader(Stream(4, shard=False), shuffle=True)
    with pytest.raises(ArgumentError, match="sampler"):
        DataLoader(Stream(4, shard=False), sampler=[0])


def test_options_are_frozen_after_construction():
    loader = DataLoader(Indexed(4))
    with pytest.raises(ArgumentError, match="batch_size"):
        loader.batch_size = 3


def test_iterable_dataset_batches_and_length():
    loader = DataLoader(Stream(7, shard=False), batch_size=3)
    assert [b.numpy().tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(loader) == 3
    dropped = DataLoader(Stream(7, shard=False), batch_size=3, drop_last=True)
    assert [b.numpy().tolist() for b in dropped] == [[0, 1, 2], [3, 4, 5]]
    assert len(dropped) == 2
    assert list(DataLoader(Stream(2, shard=False), batch_size=None)) == [0, 1]


# ---------------------------------------------------------------- workers


def test_same_seed_gives_the_same_batches_with_zero_or_two_workers():
    def run(num_workers):
        loader = DataLoader(
            Indexed(50), batch_size=6, shuffle=True, num_workers=num_workers, generator=hubkit.Generator(123)
        )
        return [_labels(loader) for _ in range(2)]

    assert run(0) == run(2)


def test_worker_results_come_back_in_sampler_order():
    loader = DataLoader(Jittery(), batch_size=1, num_workers=2, prefetch_factor=4)
    assert [int(b) for b in loader] == list(range(12))


def test_worker_info_reports_id_count_seed_and_a_dataset_copy():
    assert get_worker_info() is None
    loader = DataLoader(WhoAmI(), batch_size=2, num_workers=2, generator=hubkit.Generator(0))
    batches = list(loader)
    workers = [b["worker"].numpy().tolist() for b in batches]
    assert workers == [[0, 0], [1, 1], [0, 0], [1, 1]]  # batches go round-robin
    assert all(b["num_workers"].numpy().tolist() == [2, 2] for b in batches)
    assert all(b["is_copy"].numpy().tolist() == [1, 1] for b in batches)
    seeds = {int(b["worker"][0]): int(b["seed"][0]) for b in batches}
    assert seeds[1] == seeds[0] + 1
    assert len({int(b["pid"][0]) for b in batches} - {os.getpid()}) == 2


def test_worker_random_state_is_seeded_from_the_generator():
    def draws(seed):
        loader = DataLoader(WhoAmI(), batch_size=2, num_workers=2, generator=hubkit.Generator(seed))
        return np.concatenate([b["draws"].numpy() for b in loader])

    first = draws(1)
    np.testing.assert_array_equal(first, draws(1))
    assert not np.array_equal(first, draws(2))
    # the two workers do not share a random stream, for any of the three generators
    by_worker = first.reshape(4, 2, 3)
    assert not np.any(by_worker[0] == by_worker[1])


def test_worker_init_fn_runs_in_each_worker_with_its_id():
    def init(worker_id):
        np.random.seed(1000 + worker_id)

    class Draw(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.random.randint(0, 10**9)

    got = [int(b) for b in DataLoader(Draw(), batch_size=1, num_workers=2, worker_init_fn=init)]
    expected = [np.random.RandomState(1000).randint(0, 10**9), np.random.RandomState(1001).randint(0, 10**9)]
    assert got == expected


def test_worker_exception_is_reraised_with_its_traceback_and_workers_are_reaped():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    pids = []
    with pytest.raises(ZeroDivisionError) as info:
        it = iter(loader)
        pids = [w.pid for w in it._workers]
        list(it)
    message = str(info.value)
    assert "in DataLoader worker process 0" in message
    assert "Original Traceback" in message and "_explode" in message and "sample 5 is broken" in message
    assert pids and all(_gone(pid) for pid in pids)


def test_worker_key_error_keeps_its_type_and_a_readable_message():
    with pytest.raises(KeyError) as info:
        list(DataLoader(MissingKey(), num_workers=2))
    assert "Original Traceback" in str(info.value) and "\\n" not in str(info.value)


def test_error_in_main_process_loading_propagates_unchanged():
    with pytest.raises(ZeroDivisionError, match="sample 5 is broken"):
        list(DataLoader(Failing(), batch_size=2))


def test_timeout_raises_and_stops_the_workers():
    loader = DataLoader(Slow(), num_workers=2, timeout=0.5)
    it = iter(loader)
    pids = [w.pid for w in it._workers]
    with pytest.raises(DataLoaderError, match="timed out after 0.5 seconds"):
        next(it)
    assert all(_gone(pid) for pid in pids)


def test_a_worker_that_dies_is_reported_not_waited_for():
    with pytest.raises(DataLoaderError, match="exit code 3"):
        list(DataLoader(Dies(), num_workers=2))


def test_a_batch_that_cannot_be_pickled_is_an_error_not_a_hang():
    loader = DataLoader(Unpicklable(), batch_size=1, num_workers=2, collate_fn=Unpicklable.collate, timeout=60)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError), match="sending a batch"):
        list(loader)


def test_early_break_leaves_no_worker_processes():
    loader = DataLoader(Indexed(100), batch_size=2, num_workers=2)
    it = iter(loader)
    pids = [w.pid for w in it._workers]
    for _ in it:
        break
    assert not any(_gone(pid) for pid in pids)  # still running while the iterator lives
    del it
    assert all(_gone(pid) for pid in pids)


def test_plain_for_loop_break_reaps_workers():
    seen = []
    for batch in DataLoader(WhoAmI(), batch_size=1, num_workers=2):
        seen.append(int(batch["pid"][0]))
        break
    assert seen and _gone(seen[0])


def test_persistent_workers_survive_epochs_and_restart_cleanly_after_a_break():
    loader = DataLoader(WhoAmI(), batch_size=2, num_workers=2, persistent_workers=True)
    first = [b["pid"].numpy().tolist() for b in loader]
    for _ in loader:
        break
    second = [b["pid"].numpy().tolist() for b in loader]
    assert first == second  # same processes, full epoch after the interrupted one
    assert [b["index"].numpy().tolist() for b in loader] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    pids = {p for batch in first for p in batch}
    del loader
    assert all(_gone(pid) for pid in pids)


def test_iterable_dataset_is_read_by_every_worker_unless_it_shards():
    duplicated = sorted(int(x) for b in DataLoader(Stream(5, shard=False), batch_size=2, num_workers=2) for x in b)
    assert duplicated == sorted(list(range(5)) * 2)
    sharded = [b.numpy().tolist() for b in DataLoader(Stream(9, shard=True), batch_size=2, num_workers=2)]
    assert sorted(sum(sharded, [])) == list(range(9))
    # worker 0 holds 0,2,4,6,8 and worker 1 holds 1,3,5,7: batches alternate between them
    assert sharded == [[0, 2], [1, 3], [4, 6], [5, 7], [8]]


def test_persistent_workers_restart_an_iterable_dataset_each_epoch():
    loader = DataLoader(Stream(6, shard=True), batch_size=2, num_workers=2, persistent_workers=True)
    epochs = [sorted(int(x) for b in loader for x in b) for _ in range(3)]
    assert epochs == [list(range(6))] * 3


def test_loader_over_a_plain_sampler_with_workers_and_batch_sampler():
    loader = DataLoader(Indexed(7), batch_sampler=BatchSampler(SequentialSampler(range(7)), 3, True), num_workers=2)
    assert _labels(loader) == [[0, 1, 2], [3, 4, 5]]


def test_an_exception_class_that_cannot_be_pickled_still_reaches_the_main_process():
    class LocalError(Exception):
        pass

    class Raises(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise LocalError("defined inside a test function")

    with pytest.raises(RuntimeError, match="LocalError") as info:
        list(DataLoader(Raises(), num_workers=2, timeout=60))
    assert "defined inside a test function" in str(info.value)


def test_tensor_dataset_batches_are_stacked_tensor_slices():
    from hubkit.data import TensorDataset

    x = hubkit.from_numpy(np.arange(20, dtype=np.float32).reshape(10, 2))
    y = hubkit.from_numpy(np.arange(10))
    batches = list(DataLoader(TensorDataset(x, y), batch_size=4, num_workers=2))
    assert [b[1].numpy().tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(batches[1][0].numpy(), x.numpy()[4:8])


def test_workers_started_with_spawn_give_the_same_batches(monkeypatch):
    import hubkit.data.dataloader as dataloader_module

    def run():
        loader = DataLoader(Indexed(30), batch_size=4, shuffle=True, num_workers=2, generator=hubkit.Generator(9))
        return _labels(loader)

    forked = run()
    monkeypatch.setattr(dataloader_module, "_start_method", lambda: "spawn")
    assert run() == forked


# ---------------------------------------------------------------- resuming an epoch


@pytest.mark.parametrize("num_workers", [0, 2])
def test_state_dict_resumes_the_same_shuffled_epoch_midway(num_workers):
    data = TensorDataset(hubkit.arange(40))
    gen = hubkit.Generator(7)
    loader = DataLoader(data, batch_size=4, shuffle=True, generator=gen, num_workers=num_workers)
    full = [b[0].tolist() for b in loader]
    gen.manual_seed(7)
    it = iter(loader)
    first = [next(it)[0].tolist() for _ in range(3)]
    state = loader.state_dict()
    assert state["batches_yielded"] == 3
    del it
    other = DataLoader(data, batch_size=4, shuffle=True, generator=hubkit.Generator(99), num_workers=num_workers)
    other.load_state_dict(state)
    rest = [b[0].tolist() for b in other]
    assert first + rest == full
    assert other.state_dict()["batches_yielded"] == 10
    assert [b[0].tolist() for b in other] != full  # the following epoch draws a new order


def test_state_dict_resume_of_an_iterable_dataset_drops_the_batches_already_given():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(10))

    loader = DataLoader(Stream(), batch_size=3)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    resumed = DataLoader(Stream(), batch_size=3)
    resumed.load_state_dict(state)
    assert [b.tolist() for b in resumed] == [[3, 4, 5], [6, 7, 8], [9]]


def test_load_state_dict_refuses_something_else():
    with pytest.raises(ArgumentError, match="state_dict"):
        DataLoader(TensorDataset(hubkit.arange(4))).load_state_dict({"epoch": 1})
