"""``DataLoader``: batches from a dataset, in the main process or in worker processes.

Arguments and semantics are PyTorch's. With ``num_workers > 0`` each worker is a separate process
that fetches and collates whole batches; the main process hands out batch indices round-robin,
keeps ``prefetch_factor * num_workers`` batches in flight and yields them in sampler order.

Start method: ``fork`` on Linux (cheap, and the dataset need not be picklable), ``spawn``
elsewhere and whenever cupy is loaded in the main process (a forked child cannot use the
parent's CUDA context). A start method chosen with ``multiprocessing.set_start_method`` wins;
with ``spawn`` or ``forkserver`` the dataset, ``collate_fn`` and ``worker_init_fn`` must be
picklable.

Seeds: every epoch, one ``base_seed`` is drawn from ``generator`` (else hubkit's global
generator) before any index is sampled, in the main process whatever ``num_workers`` is. Worker
``k`` seeds Python's ``random``, numpy's global generator and hubkit's global generator from
``base_seed + k``. So a seeded ``generator`` gives the same batch order with any number of
workers, and the same random augmentations for a given number of workers.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from hubkit.data import _worker
from hubkit.data._worker import (
    ExceptionWrapper,
    IterableDatasetStopIteration,
    IterableFetcher,
    MapFetcher,
    ResumeIteration,
)
from hubkit.data.collate import default_collate, default_convert
from hubkit.data.dataset import Dataset, IterableDataset
from hubkit.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from hubkit.errors import ArgumentError, DataLoaderError
from hubkit.random import Generator, default_generator

# Seconds a worker gets to exit after being told to, before it is terminated.
_JOIN_TIMEOUT = 5.0
# Seconds a terminated worker gets to die before it is killed (SIGKILL), so a worker that handles or
# ignores SIGTERM (worker_init_fn may install a handler) cannot hang the main process.
_KILL_AFTER = 2.0


class _InfiniteConstantSampler(Sampler[None]):
    """The "sampler" of an IterableDataset: ``None`` forever; the dataset decides when to stop."""

    def __iter__(self) -> Iterator[None]:
        return itertools.repeat(None)


def _start_method() -> str:
    chosen = multiprocessing.get_start_method(allow_none=True)
    if chosen is not None:
        return chosen
    if sys.platform.startswith("linux") and "cupy" not in sys.modules:
        return "fork"
    return "spawn"


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: a map-style ``Dataset`` (``__getitem__``/``__len__``) or an ``IterableDataset``.
        batch_size: samples per batch; ``None`` turns batching off (samples come one by one,
            through ``default_convert``).
        shuffle: visit indices in a new random order every epoch (map-style only).
        sampler: an iterable of indices to use instead of sequential/random order.
        batch_sampler: an iterable of lists of indices; excludes ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``.
        num_workers: worker processes; 0 loads in the main process.
        collate_fn: turns a list of samples into a batch (default: ``default_collate``).
        drop_last: drop the last batch when it is shorter than ``batch_size``.
        timeout: seconds to wait for a worker's batch before raising ``DataLoaderError``
            (0 waits for ever; dead workers are detected regardless).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding.
        generator: the ``hubkit.Generator`` for shuffling and for the workers' base seed.
        prefetch_factor: batches in flight per worker.
        persistent_workers: keep the workers alive between epochs.

    A batch of ``(x: (C, H, W) array, y: int)`` samples is ``[x: Tensor (B, C, H, W), y: Tensor (B,)]``.
    """

    _FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = False,
        sampler: Sampler | Any | None = None,
        batch_sampler: Sampler | Any | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        generator: Generator | None = None,
        prefetch_factor: int = 2,
        persistent_workers: bool = False,
    ) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ArgumentError(f"num_workers must be a non-negative integer, got {num_workers!r}")
        if timeout < 0:
            raise ArgumentError(f"timeout must be 0 (wait for ever) or a positive number of seconds, got {timeout}")
        if num_workers > 0 and (
            isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) or prefetch_factor < 1
        ):
            raise ArgumentError(f"prefetch_factor must be a positive integer, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ArgumentError("persistent_workers=True needs num_workers > 0; got num_workers=0")

        is_iterable = isinstance(dataset, IterableDataset)
        if is_iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ArgumentError(
                        f"a DataLoader over an IterableDataset takes no {name} (the dataset decides the "
                        f"order), got {name}={value!r}"
                    )
        elif sampler is not None and shuffle:
            raise ArgumentError(
                "sampler and shuffle=True are mutually exclusive: a sampler decides the order itself; "
                "use RandomSampler (or SubsetRandomSampler) as the sampler to shuffle"
            )

        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ArgumentError(
                    "batch_sampler is mutually exclusive with batch_size, shuffle, sampler and drop_last; "
                    f"got batch_size={batch_size}, shuffle={shuffle}, sampler={sampler!r}, drop_last={drop_last}"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ArgumentError(
                "batch_size=None turns batching off, so drop_last=True has nothing to drop; "
                "pass a batch_size or drop_last=False"
            )

        if sampler is None:
            if is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn or (default_collate if batch_sampler is not None else default_convert)
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._is_iterable = is_iterable
        self._iterator: _MultiProcessIter | None = None
        # the latest epoch's generator state at its start and batches handed out (shared with its iterator)
        self._progress: dict[str, Any] = {"generator_state": None, "batches_yielded": 0}
        self._resume: dict | None = None  # a state_dict to continue from at the next iter()
        self._initialized = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_initialized", False) and name in self._FROZEN:
            raise ArgumentError(f"{name} cannot be changed after the DataLoader is built; build a new DataLoader")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        if self._iterator is None or self._iterator._shutdown:
            self._iterator = _MultiProcessIter(self)
        else:
            self._iterator._reset(self)
        return self._iterator

    def state_dict(self) -> dict[str, Any]:
        """Where the current epoch stands: the generator state it began with and how many batches it gave.

        ``load_state_dict`` of this makes the next ``iter(loader)`` continue the same epoch exactly: the
        same shuffled order (and worker seeds), resuming after the batches already given. The indices
        of those batches are skipped without loading them (an ``IterableDataset`` has no indices, so
        its skipped batches are loaded and dropped). The idea of torchdata's ``StatefulDataLoader``.
        """
        return dict(self._progress)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or "batches_yielded" not in state or "generator_state" not in state:
            raise ArgumentError("DataLoader.load_state_dict expects what DataLoader.state_dict() returned, "
                                f"got {type(state).__name__}")
        self._resume = state if state["generator_state"] is not None else None

    def __len__(self) -> int:
        """Batches per epoch (for an ``IterableDataset``: derived from ``len(dataset)`` if it has one)."""
        if self._is_iterable:
            n = len(self.dataset)  # a TypeError here means the iterable dataset has no length
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)


class _BaseIter:
    def __init__(self, loader: DataLoader) -> None:
        self._is_iterable = loader._is_iterable
        self._dataset = loader.dataset
        self._auto_collation = loader._auto_collation
        self._collate_fn = loader.collate_fn
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._skip = 0  # batches of a resumed epoch to load and drop (iterable datasets only)
        self._begin_epoch(loader)

    def _begin_epoch(self, loader: DataLoader) -> None:
        """Draw the epoch's seeds and start the sampler; continue a resumed epoch where it stopped.

        The iterator keeps no reference to ``loader`` (a persistent one is held by it): progress goes
        to a small dict they share.
        """
        generator = loader.generator or default_generator
        resume, loader._resume = loader._resume, None
        if resume is not None:
            generator.set_state(resume["generator_state"])
        self._progress = loader._progress = {"generator_state": generator.get_state(), "batches_yielded": 0}
        # Drawn before the sampler draws anything, so the stream of `generator` is the same for any
        # number of workers (and the same batches come out).
        self._base_seed = generator.randint_seed()
        self._sampler_iter = iter(self._index_sampler)
        if resume is not None and resume["batches_yielded"]:
            done = int(resume["batches_yielded"])
            if self._is_iterable:
                self._skip = done
            else:
                for _ in itertools.islice(self._sampler_iter, done):
                    pass
                self._progress["batches_yielded"] = done

    def __iter__(self) -> _BaseIter:
        return self

    def _next_index(self) -> Any:
        return next(self._sampler_iter)

    def _fetcher(self) -> MapFetcher | IterableFetcher:
        fetcher_type = IterableFetcher if self._is_iterable else MapFetcher
        return fetcher_type(self._dataset, self._auto_collation, self._collate_fn, self._drop_last)


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self._fetch = self._fetcher().fetch

    def __next__(self) -> Any:
        while self._skip:
            self._skip -= 1
            self._fetch(self._next_index())
            self._progress["batches_yielded"] += 1
        batch = self._fetch(self._next_index())
        self._progress["batches_yielded"] += 1
        return batch


class _MultiProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor * loader.num_workers
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        ctx = multiprocessing.get_context(_start_method())
        self._result_queue = ctx.Queue()
        self._done_event = ctx.Event()
        self._index_queues: list[Any] = []
        self._workers: list[Any] = []
        self._shutdown = False
        try:
            for worker_id in range(self._num_workers):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()  # never block the main process's exit on unread tasks
                process = ctx.Process(
                    target=_worker.worker_loop,
                    args=(
                        self._is_iterable,
                        self._dataset,
                        index_queue,
                        self._result_queue,
                        self._done_event,
                        self._auto_collation,
                        self._collate_fn,
                        self._drop_last,
                        self._base_seed,
                        loader.worker_init_fn,
                        worker_id,
                        self._num_workers,
                    ),
                    daemon=True,
                )
                process.start()
                self._index_queues.append(index_queue)
                self._workers.append(process)
        except BaseException:
            self._shutdown_workers()
            raise
        self._reset(loader, first_iter=True)

    def _reset(self, loader: DataLoader, first_iter: bool = False) -> None:
        if not first_iter:
            # Persistent workers keep their seeds, but the draw keeps `generator`'s stream (and so
            # the shuffle order) the same as with fresh workers or none.
            self._begin_epoch(loader)
        self._send_idx = 0  # next task id to hand out
        self._rcvd_idx = 0  # next task id to yield
        # task id -> [worker_id] while in flight, [worker_id, data] once it arrived out of order
        self._task_info: dict[int, list] = {}
        self._outstanding = 0  # tasks handed out and not yet answered
        self._workers_active = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            for index_queue in self._index_queues:
                index_queue.put(ResumeIteration())
            pending = self._num_workers
            while pending > 0:  # results of an unfinished epoch arrive first and are dropped
                task_id, _ = self._get_data()
                if isinstance(task_id, ResumeIteration):
                    pending -= 1
        for _ in range(self._prefetch):
            self._try_put_index()

    def _try_put_index(self) -> None:
        if self._outstanding >= self._prefetch:
            return
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._worker_cycle)
            if self._workers_active[worker_id]:
                break
        else:
            return  # every worker's iterable dataset is exhausted
        self._index_queues[worker_id].put((self._send_idx, index))
        self._task_info[self._send_idx] = [worker_id]
        self._send_idx += 1
        self._outstanding += 1

    def _get_data(self) -> tuple:
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = _worker.POLL_INTERVAL
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    self._shutdown_workers(grace=0.0)  # the workers are stuck: do not wait for them
                    raise DataLoaderError(
                        f"DataLoader timed out after {self._timeout} seconds waiting for a batch from its "
                        f"{self._num_workers} worker(s); raise timeout= or make the dataset faster"
                    )
            try:
                return _worker.receive(self._result_queue.get(timeout=wait))
            except queue.Empty:
                self._check_workers_alive()

    def _check_workers_alive(self) -> None:
        dead = [
            (wid, w)
            for wid, w in enumerate(self._workers)
            if self._workers_active[wid] and not w.is_alive()
        ]
        if dead:
            details = ", ".join(f"worker {wid} (pid {w.pid}, exit code {w.exitcode})" for wid, w in dead)
            self._shutdown_workers()
            raise DataLoaderError(
                f"DataLoader worker process exited unexpectedly: {details}. A negative exit code is the "
                f"signal that killed it (-9: out of memory is a common cause); try num_workers=0 to see the "
                f"error in the main process"
            )

    def __next__(self) -> Any:
        while self._skip:
            self._skip -= 1
            self._next_data()
        return self._next_data()

    def _next_data(self) -> Any:
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None:
                    if len(info) == 2 or self._workers_active[info[0]]:
                        break
                    # the task went to a worker whose iterable dataset ran out: it will never answer
                    del self._task_info[self._rcvd_idx]
                    self._outstanding -= 1
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration

            info = self._task_info[self._rcvd_idx]
            if len(info) == 2:
                del self._task_info[self._rcvd_idx]
                return self._process(info[1])

            task_id, data = self._get_data()
            self._outstanding -= 1
            if isinstance(data, IterableDatasetStopIteration):
                self._workers_active[data.worker_id] = False
                self._task_info.pop(task_id, None)
                self._try_put_index()
                continue
            if task_id != self._rcvd_idx:
                self._task_info[task_id].append(data)
                continue
            del self._task_info[task_id]
            return self._process(data)

    def _process(self, data: Any) -> Any:
        self._rcvd_idx += 1
        if isinstance(data, ExceptionWrapper):
            self._shutdown_workers()
            data.reraise()
        self._try_put_index()
        self._progress["batches_yielded"] += 1
        return data

    def _shutdown_workers(self, grace: float = _JOIN_TIMEOUT) -> None:
        """Stop every worker and reap it, so no process outlives the iterator (idempotent).

        Workers get ``grace`` seconds in all to exit by themselves; the rest are terminated (SIGTERM),
        and those still alive ``_KILL_AFTER`` seconds later are killed (SIGKILL). Every wait is bounded.
        """
        if self._shutdown:
            return
        self._shutdown = True
        try:
            self._done_event.set()
            for index_queue in self._index_queues:
                index_queue.put(None)
            deadline = time.monotonic() + grace
            for process in self._workers:
                process.join(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            stuck = [p for p in self._workers if p.is_alive()]
            for process in stuck:
                process.terminate()
            deadline = time.monotonic() + _KILL_AFTER
            for process in stuck:
                process.join(timeout=max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
            for index_queue in self._index_queues:
                index_queue.close()
            self._result_queue.cancel_join_thread()
            self._result_queue.close()

    def __del__(self) -> None:
        if hasattr(self, "_shutdown"):
            self._shutdown_workers()
