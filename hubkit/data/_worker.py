"""What runs inside a DataLoader worker process, and what the workers and the main process exchange.

A worker owns one index queue (tasks ``(task_id, indices)`` from the main process) and shares one
result queue with the other workers. It answers each task with ``(task_id, batch)``, pickled by
the worker itself so that a batch or an exception that cannot be pickled becomes an error the main
process sees instead of a message silently lost in a queue's feeder thread. ``None`` on the index
queue means "exit"; ``_ResumeIteration`` starts a new epoch for persistent workers.

A worker never outlives the process that started it: a watchdog thread checks every ``POLL_INTERVAL``
that its parent is still the one it started under and otherwise ends the process at once, whatever the
main thread is doing (fetching a batch, or blocked handing a large one to a queue nobody reads). And
SIGTERM is given back its default action at start, so a handler the training script installed (inherited
through fork) cannot make the worker ignore the main process's ``terminate()``, as PyTorch's workers
also replace it.
"""

from __future__ import annotations

import os
import pickle
import queue
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np

from hubkit import random as hk_random

# How often a worker checks that its parent is still alive, in seconds.
POLL_INTERVAL = 1.0
# The exit status of a worker whose parent vanished (nobody reads it; it tells a debugger why).
ORPHANED_EXIT_CODE = 70


@dataclass(frozen=True)
class WorkerInfo:
    """Who this worker is: ``id`` in ``[0, num_workers)``, its ``seed`` and its copy of ``dataset``."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process: its ``WorkerInfo``. In the main process: ``None``.

    An ``IterableDataset`` uses it in ``__iter__`` to read only its share of the data, e.g.
    items ``info.id, info.id + info.num_workers, ...``.
    """
    return _worker_info


class _KeyErrorMessage(str):
    """A message for a re-raised ``KeyError``, which would otherwise print with quotes and ``\\n``."""

    def __repr__(self) -> str:
        return str(self)


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process as its type and traceback text."""

    def __init__(self, exc_info: tuple | None = None, where: str = "in background") -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where
        try:
            pickle.dumps(self.exc_type)
        except Exception:  # e.g. a class defined inside a function: the main process could not load it
            self.exc_type = RuntimeError
            self.where = f"({exc_info[0].__qualname__}, which cannot be pickled) {where}"

    def reraise(self) -> None:
        """Raise an exception of the original type whose message holds the worker's traceback."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:  # the type needs other constructor arguments; keep the text at least
            raise RuntimeError(msg) from None
        raise exception


@dataclass(frozen=True)
class IterableDatasetStopIteration:
    """Sent by a worker whose copy of an ``IterableDataset`` is exhausted for this epoch."""

    worker_id: int


@dataclass(frozen=True)
class ResumeIteration:
    """Sent to persistent workers to start a new epoch; echoed back as the acknowledgement."""


class MapFetcher:
    """Fetches batches from a map-style dataset: ``dataset[i]`` for each index, then collate."""

    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Callable, drop_last: bool) -> None:
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        getitems = getattr(dataset, "__getitems__", None)
        self._getitems = getitems if callable(getitems) else None

    def fetch(self, index: Any) -> Any:
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self._getitems is not None:
            return self.collate_fn(self._getitems(index))
        dataset = self.dataset
        return self.collate_fn([dataset[i] for i in index])


class IterableFetcher:
    """Fetches batches from an iterable dataset: the next ``len(index)`` items, then collate.

    Raises ``StopIteration`` once the dataset is exhausted (or, with ``drop_last``, when only a
    short batch is left).
    """

    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Callable, drop_last: bool) -> None:
        self.dataset_iter = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index: Any) -> Any:
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.dataset_iter))
        data = []
        for _ in index:
            try:
                data.append(next(self.dataset_iter))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def seed_worker(base_seed: int, worker_id: int) -> int:
    """Seed this process's Python, numpy and hubkit global generators for worker ``worker_id``.

    The worker seed is ``base_seed + worker_id`` (what ``WorkerInfo.seed`` reports); numpy's
    global generator takes a state derived from both numbers, since it only accepts 32-bit seeds.
    """
    seed = base_seed + worker_id
    random.seed(seed)
    hk_random.manual_seed(seed)
    np.random.seed(np.random.SeedSequence([base_seed, worker_id]).generate_state(4))
    return seed


def _send(data_queue: Any, message: tuple, worker_id: int) -> None:
    try:
        payload = ForkingPickler.dumps(message)
    except Exception:
        wrapped = ExceptionWrapper(where=f"while sending a batch from DataLoader worker process {worker_id}")
        payload = ForkingPickler.dumps((message[0], wrapped))
    data_queue.put(bytes(payload))


def _exit_when_orphaned(parent_pid: int) -> None:
    """Watchdog thread: end this process as soon as its parent is no longer ``parent_pid``.

    ``os._exit`` rather than a flag: the main thread may be blocked for good (a queue's feeder thread
    writing a batch into a pipe whose reader was SIGKILLed is joined at exit and never returns), and
    the batches it holds must be freed now. Polling ``getppid`` works for any start method and any
    thread; Linux's ``PR_SET_PDEATHSIG`` would fire when the *thread* that started the worker ends,
    which kills healthy workers of a loader iterated in a short-lived thread.
    """
    while os.getppid() == parent_pid:
        time.sleep(POLL_INTERVAL)
    os._exit(ORPHANED_EXIT_CODE)


def worker_loop(
    is_iterable: bool,
    dataset: Any,
    index_queue: Any,
    data_queue: Any,
    done_event: Any,
    auto_collation: bool,
    collate_fn: Callable,
    drop_last: bool,
    base_seed: int,
    init_fn: Callable[[int], None] | None,
    worker_id: int,
    num_workers: int,
) -> None:
    """The body of a worker process; returns when told to, and ends at once when the main process is gone."""
    global _worker_info
    # The parent as this process found it: the main process for fork and spawn, the fork server for
    # forkserver (which exits when the main process does).
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), name="hubkit-worker-watchdog",
                     daemon=True).start()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        seed = seed_worker(base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        fetcher_type = IterableFetcher if is_iterable else MapFetcher
        init_error: ExceptionWrapper | None = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = fetcher_type(dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")

        iteration_end = False
        while True:
            try:
                task = index_queue.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                continue
            if task is None:
                break
            if isinstance(task, ResumeIteration):
                _send(data_queue, (task, None), worker_id)
                iteration_end = False
                if is_iterable and init_error is None:
                    try:
                        fetcher = fetcher_type(dataset, auto_collation, collate_fn, drop_last)
                    except Exception:
                        init_error = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
                continue
            if done_event.is_set() or iteration_end:
                continue  # drain the queue until the None that tells us to exit
            task_id, index = task
            if init_error is not None:
                data, init_error = init_error, None
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not is_iterable:
                        data = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
                    else:
                        data = IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                except Exception:
                    data = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
            _send(data_queue, (task_id, data), worker_id)
    except KeyboardInterrupt:
        pass  # the main process gets the same Ctrl-C and raises it there
    if done_event.is_set():
        # Results nobody will read must not keep this process alive in the queue's feeder thread.
        data_queue.cancel_join_thread()
    data_queue.close()


def receive(payload: bytes) -> tuple:
    """Undo ``_send``: ``(task_id, data)`` as the worker produced it."""
    return pickle.loads(payload)
