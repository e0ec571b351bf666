"""``Trainer(strategy="ddp", devices=N)``: the Trainer's loop on every rank of a data-parallel job.

What the strategy does, as Lightning's DDP strategy does:

- Joins the job: inside ``hubkit run --nproc N`` / ``mpiexec -n N`` it initializes the process group
  (``"nccl"`` on a GPU, ``"mpi"`` on the CPU); started as a plain ``python train.py`` with ``devices=N > 1``,
  it restarts the same command line as N ranks (``os.execv`` into ``hubkit run``), as Lightning's launcher does.
- Wraps the module in ``DistributedDataParallel`` (rank 0's weights everywhere, averaged gradients;
  ``no_sync`` on the batches that only accumulate) and gives the training loader a ``DistributedSampler``
  (reshuffled per epoch; shuffled if the loader shuffled).
- Only rank 0 logs, draws progress bars and writes checkpoints. The other ranks make the same checkpoint
  decisions from rank 0's metrics (so a callback never deletes a file rank 0 keeps) and stop when any
  rank asks to stop.
- ``prepare_data`` and the ``*_dataloader`` hooks (where datasets download) run on rank 0 first while the
  others wait at a barrier, then on the others, which find the files in the cache.
- Validation, test and predict run the whole loader on every rank: every rank sees the same metrics
  (the ones ``EarlyStopping`` and ``ModelCheckpoint`` watch) without a reduction.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from hubkit.errors import ArgumentError, TrainerError
from hubkit.train.callbacks import Callback, ModelCheckpoint

log = logging.getLogger("hubkit.train")

STRATEGIES = ("ddp", "ddp_find_unused_parameters_true")
# the variables a launcher sets: torchrun / hubkit run --launcher local, MPICH's hydra, Open MPI
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launched_world_size() -> int | None:
    """The number of processes the launcher started, or None when none did."""
    for name in _WORLD_SIZE_VARS:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


class DDPStrategy:
    """One rank's side of ``Trainer(strategy="ddp")``."""

    def __init__(self, strategy: str, devices: int | str, device: Any) -> None:
        import hubkit.distributed as dist

        wanted = _device_count(devices)
        if not dist.is_initialized():
            launched = launched_world_size()
            if (launched is None or launched == 1) and wanted is not None and wanted > 1:
                from hubkit.distributed.launch import relaunch_current_program

                log.info("Trainer(strategy=%r, devices=%d): restarting this program as %d processes", strategy,
                         wanted, wanted)
                relaunch_current_program(wanted)
            dist.init_process_group("nccl" if device.type == "cuda" else "mpi")
        self.world_size = dist.get_world_size()
        self.rank = dist.get_rank()
        self.local_rank = dist.get_local_rank()
        if wanted is not None and wanted != self.world_size:
            raise TrainerError(f"Trainer(devices={devices!r}) but this job has {self.world_size} processes: start it "
                               f"with `hubkit run --nproc {wanted} script.py`, or pass devices={self.world_size} "
                               "(or 'auto')")
        self.find_unused_parameters = strategy == "ddp_find_unused_parameters_true"
        self.ddp: Any = None

    @property
    def is_global_zero(self) -> bool:
        return self.rank == 0

    def configure_trainer(self, trainer: Any) -> None:
        """Silence the ranks other than 0: no logger, bars, summary or INFO logging."""
        if self.is_global_zero:
            return
        trainer.logger = None
        trainer.enable_progress_bar = False
        trainer.enable_model_summary = False
        log.setLevel(logging.WARNING)

    @contextlib.contextmanager
    def rank_zero_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (downloads land in the cache); the others wait, then run it."""
        import hubkit.distributed as dist

        if self.world_size == 1:
            yield
            return
        if not self.is_global_zero:
            dist.barrier()
        yield
        if self.is_global_zero:  # not reached if rank 0 raised: the others then fail instead of waiting forever
            dist.barrier()

    def prepare_data(self, module: Any) -> None:
        """Lightning's ``prepare_data`` hook: on rank 0 only, before every rank builds its loaders."""
        hook = getattr(module, "prepare_data", None)
        with self.rank_zero_first():
            if callable(hook) and self.is_global_zero:
                hook()

    def setup_fit(self, trainer: Any, module: Any, train_loader: Any) -> Any:
        """Wrap ``module`` in DDP, align the checkpoint callbacks with rank 0, and shard ``train_loader``."""
        import hubkit.distributed as dist
        from hubkit.nn.parallel import DistributedDataParallel

        if self.ddp is None or self.ddp.module is not module:
            self.ddp = DistributedDataParallel(module, find_unused_parameters=self.find_unused_parameters)
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint):
                paths = [str(callback.dirpath) if callback.dirpath is not None else None]
                dist.broadcast_object_list(paths, src=0)
                callback.dirpath = None if paths[0] is None else type(trainer.default_root_dir)(paths[0])
        if not any(isinstance(c, _RankZeroMetrics) for c in trainer.callbacks):
            trainer.callbacks.insert(0, _RankZeroMetrics())
        return self.shard(train_loader, shuffle_seed=trainer.seed or 0)

    def shard(self, loader: Any, shuffle_seed: int) -> Any:
        """``loader`` with a ``DistributedSampler`` in place of its sampler (shuffling as it did)."""
        from hubkit.data import DataLoader, DistributedSampler, RandomSampler
        from hubkit.data.sampler import BatchSampler

        if not isinstance(loader, DataLoader) or loader._is_iterable:
            log.warning("the training data is not a map-style hubkit DataLoader, so it cannot be split between the "
                        "%d ranks: every rank reads all of it", self.world_size)
            return loader
        if isinstance(loader.sampler, DistributedSampler):
            return loader
        if loader.batch_sampler is not None and type(loader.batch_sampler) is not BatchSampler:
            raise TrainerError("strategy='ddp' cannot split a DataLoader built with a custom batch_sampler between "
                               "ranks; give it a DistributedSampler yourself (sampler=DistributedSampler(dataset))")
        sampler = DistributedSampler(loader.dataset, num_replicas=self.world_size, rank=self.rank,
                                     shuffle=isinstance(loader.sampler, RandomSampler), seed=shuffle_seed)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn, drop_last=loader.drop_last,
                          timeout=loader.timeout, worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                          prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers)

    def set_epoch(self, loader: Any, epoch: int) -> None:
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def training_step(self, trainer: Any, batch: Any, batch_idx: int, sync: bool) -> Any:
        """``training_step`` through DDP: gradients are averaged by the backward that follows when ``sync``."""
        ddp = self.ddp
        with contextlib.nullcontext() if sync else ddp.no_sync():
            ddp._pre_forward()
            out = trainer._step_fn("training_step", batch, batch_idx)
            ddp._post_forward(out)
        return out

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any (a stop request must stop them all together)."""
        import hubkit
        import hubkit.distributed as dist

        if self.world_size == 1:
            return bool(flag)
        t = hubkit.tensor([1 if flag else 0], dtype=hubkit.int32, device=self.ddp_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def ddp_device(self) -> Any:
        import hubkit.distributed as dist

        return "cuda" if dist.get_backend() == "nccl" else "cpu"


def _device_count(devices: int | str) -> int | None:
    if devices == "auto" or devices == -1:
        return None
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ArgumentError(f"Trainer(devices={devices!r}) with strategy='ddp': use the number of processes (an int "
                            "of 1 or more) or 'auto' (as many as the job has)")
    return devices


class _RankZeroMetrics(Callback):
    """Makes every rank's ``callback_metrics`` rank 0's before the other callbacks read them.

    It runs first, at the hooks where EarlyStopping and ModelCheckpoint decide, so their decisions (and
    the files a ModelCheckpoint deletes) are the same on every rank.
    """

    def _sync(self, trainer: Any) -> None:
        import hubkit.distributed as dist

        if dist.get_world_size() == 1:
            return
        metrics = [dict(trainer.callback_metrics)]
        dist.broadcast_object_list(metrics, src=0)
        trainer.callback_metrics.clear()
        trainer.callback_metrics.update(metrics[0])

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        self._sync(trainer)

    def on_validation_end(self, trainer: Any, module: Any) -> None:
        self._sync(trainer)

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if any(isinstance(c, ModelCheckpoint) and c.every_n_train_steps for c in trainer.callbacks):
            self._sync(trainer)
