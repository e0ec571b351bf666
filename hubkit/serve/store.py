"""The model store: every served model, its bounded job queue, its dynamic batcher and its worker processes.

Everything here runs on the server's event loop. A request becomes a :class:`Job` in its model's queue; each
worker process has a task that takes the next batch (the first waiting job, then more until ``batch_size``
jobs or ``max_batch_delay`` ms, as TorchServe's frontend batches), sends it to its process from a thread of its
own, and resolves the jobs' futures with the answers.

Scaling down and unregistering put a retire marker in the queue behind the waiting jobs, so a worker leaves only
after the jobs queued before the change are answered. A worker that dies or overruns ``response_timeout`` fails
its batch (500 / 504) and is replaced; one whose model fails to load marks the model FAILED (``GET /models``
says why) and is not retried until the model is scaled again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hubkit.errors import HubkitError
from hubkit.serve.config import ModelConfig, ServeConfig
from hubkit.serve.errors import ConfigError, HTTPError, unavailable
from hubkit.serve.handlers import HANDLER_TASKS
from hubkit.serve.metrics import ServeMetrics
from hubkit.serve.worker import WorkerDied, WorkerProcess, WorkerTimeout

__all__ = ["ModelStore", "ServedModel", "inspect_source"]

logger = logging.getLogger("hubkit.serve")

_RETIRE = object()  # queue marker: the worker that takes it exits


@dataclass
class Job:
    payload: Any
    future: asyncio.Future
    enqueued: float


def inspect_source(config: ModelConfig) -> tuple[str, str, str]:
    """Check a model's source without loading it: ``(kind, modality, task)`` where kind is what the handler
    accepts (``image``, ``text``, ``audio``). Raises ``HubkitError`` for an unknown architecture or tag, a task
    no handler serves, a missing checkpoint, or an architecture without weights and no checkpoint."""
    from hubkit.hub import api

    info = api.model_info(config.arch)
    if config.tag:
        api.get_weights(f"{config.arch}.{config.tag}")
    kind = HANDLER_TASKS.get(info["task"])
    if kind is None:
        raise ConfigError(f"{config.arch} is a {info['modality']} model for {info['task']}; hubkit serve handles "
                          f"{', '.join(HANDLER_TASKS)} models")  # fmt: skip
    ckpt = config.checkpoint
    if ckpt is not None and not ckpt.startswith(("http://", "https://")):
        path = Path(ckpt.removeprefix("file://"))
        if not path.exists():
            raise ConfigError(f"{config.name}: checkpoint {path} does not exist")
    if ckpt is None and not config.tag and not info["default"]:
        raise ConfigError(f"{config.arch} has no published weights; serve it from a checkpoint: "
                          f"{config.name}={config.arch}:path/to/weights")  # fmt: skip
    return kind, info["modality"], info["task"]


class WorkerSlot:
    """One worker process and the task that feeds it."""

    def __init__(self, worker_id: int, model: ServedModel) -> None:
        self.id = worker_id
        self.name = f"W-{worker_id}-{model.name}_{model.version}"
        self.process = WorkerProcess(model.worker_spec)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        self.status = "STARTING"
        self.start_time = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.restarts = 0
        self.describe: dict[str, Any] = {}
        self.task: asyncio.Task | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "startTime": self.start_time, "status": self.status,
                "memoryUsage": self.process.memory_usage(), "pid": self.process.pid or -1, "gpu": False,
                "gpuUsage": "N/A", "restarts": self.restarts}  # fmt: skip


class ServedModel:
    """A registered model: its settings, queue and workers."""

    def __init__(self, store: ModelStore, config: ModelConfig, *, loaded_at_startup: bool) -> None:
        self.store = store
        self.config = config
        self.name = config.name
        self.version = config.version
        self.loaded_at_startup = loaded_at_startup
        self.kind: str | None = None
        self.modality: str | None = None
        self.task: str | None = None
        self.error: str | None = None
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pending = 0  # jobs in the queue (retire markers not counted)
        self.in_flight = 0  # requests accepted and not yet answered
        self.target = 0  # workers wanted
        self.retiring = 0  # retire markers not yet taken
        self.slots: dict[int, WorkerSlot] = {}
        self.removed = False
        self.batch_seconds: float | None = None  # running mean, for Retry-After
        self._changed = asyncio.Event()

    @property
    def worker_spec(self) -> dict[str, Any]:
        cfg = self.store.config
        return self.config.worker_spec(max_image_pixels=cfg.max_image_pixels, device=cfg.device)

    # ------------------------------------------------------------ state

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def live_slots(self) -> list[WorkerSlot]:
        return [s for s in self.slots.values() if s.status in ("STARTING", "READY", "BUSY")]

    def ready_count(self) -> int:
        return sum(s.status in ("READY", "BUSY") for s in self.slots.values())

    @property
    def status(self) -> str:
        if self.ready_count():
            return "READY"
        if any(s.status == "STARTING" for s in self.slots.values()):
            return "LOADING"
        if self.error is not None:
            return "FAILED"
        return "NO_WORKERS"

    def worker_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.slots.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        return counts

    def as_json(self) -> dict[str, Any]:
        """TorchServe's ``describe model`` object, plus hubkit's status, error, modality and task."""
        c = self.config
        out = {
            "modelName": self.name, "modelVersion": self.version, "modelUrl": c.url, "runtime": "python",
            "minWorkers": self.target, "maxWorkers": max(self.target, c.max_workers or 0), "batchSize": c.batch_size,
            "maxBatchDelay": c.max_batch_delay, "responseTimeout": c.response_timeout,
            "loadedAtStartup": self.loaded_at_startup, "status": self.status, "modality": self.modality,
            "task": self.task, "workers": [s.as_json() for s in self.slots.values()],
            "jobQueueStatus": {"remainingCapacity": max(self.store.config.job_queue_size - self.pending, 0),
                               "pendingRequests": self.pending},
        }  # fmt: skip
        if self.error is not None:
            out["error"] = self.error
        return out

    # ------------------------------------------------------------ scaling

    def scale(self, n: int) -> None:
        """Ask for ``n`` workers: start the missing ones, or retire the extra ones once the queue before them
        is answered. Scaling a FAILED model tries loading it again."""
        if self.removed:
            return
        if self.kind is None:  # the source itself is invalid; no worker could load it
            raise HTTPError(400, "BadRequestException", f'Model "{self.name}" cannot be loaded: {self.error}')
        if n > 0 and not self.live_slots():
            self.error = None
        self.target = n
        alive = len(self.live_slots()) - self.retiring
        for _ in range(n - alive):
            self._start_slot()
        for _ in range(alive - n):
            self.retiring += 1
            self.queue.put_nowait(_RETIRE)
        self._notify()

    def _start_slot(self) -> None:
        slot = WorkerSlot(next(self.store.worker_ids), self)
        self.slots[slot.id] = slot
        slot.task = asyncio.get_running_loop().create_task(self._run_slot(slot), name=slot.name)

    async def _run_slot(self, slot: WorkerSlot) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.store.config.startup_timeout
        try:
            while True:
                slot.status = "STARTING"
                self._notify()
                slot.process.threads = self.store.worker_threads()  # decided now: every startup model is known
                ok, info = await loop.run_in_executor(slot.executor, slot.process.start, timeout)
                if not ok:
                    slot.status = "FAILED"
                    self.error = f"failed to load: {info}"
                    logger.error("model %s: worker %s %s", self.name, slot.id, self.error)
                    return
                slot.status, slot.describe = "READY", info
                logger.info("model %s: worker %s ready (pid %s)", self.name, slot.id, slot.process.pid)
                self._notify()
                if not await self._serve(slot, loop):
                    return
                slot.restarts += 1
                logger.warning("model %s: restarting worker %s", self.name, slot.id)
        finally:
            if slot.status != "FAILED":
                slot.status = "STOPPED"
            await loop.run_in_executor(slot.executor, slot.process.stop)
            slot.executor.shutdown(wait=False)
            self.slots.pop(slot.id, None)
            if not self.live_slots():
                self._fail_queued()
            self._notify()

    async def _serve(self, slot: WorkerSlot, loop: asyncio.AbstractEventLoop) -> bool:
        """Feed batches to the worker; True when its process must be replaced (it died or timed out)."""
        metrics = self.store.metrics
        while True:
            jobs, retire = await self._next_batch(loop)
            if jobs:
                slot.status = "BUSY"
                started = loop.time()
                for job in jobs:
                    metrics.queue_latency.observe(started - job.enqueued, self.name)
                    metrics.queue_us.inc(self.name, self.version, metrics.hostname,
                                         amount=(started - job.enqueued) * 1e6)  # fmt: skip
                metrics.batch_size.observe(len(jobs), self.name)
                try:
                    results, calls = await loop.run_in_executor(
                        slot.executor, slot.process.infer, [j.payload for j in jobs], self.config.response_timeout)
                except WorkerTimeout as e:
                    _fail(jobs, HTTPError(504, "TimeoutException", f'Model "{self.name}": {e}; the worker was '
                                                                   "restarted"))  # fmt: skip
                    self._retired(retire)
                    return not retire
                except WorkerDied as e:
                    _fail(jobs, HTTPError(500, "InternalServerException", f'Model "{self.name}": {e}'))
                    self._retired(retire)
                    return not retire
                elapsed = loop.time() - started
                self.batch_seconds = elapsed if self.batch_seconds is None else 0.8 * self.batch_seconds + 0.2 * elapsed
                metrics.model_calls.inc(self.name, amount=calls)
                for job, (outcome, value) in zip(jobs, results):
                    if job.future.done():
                        continue
                    if outcome == "ok":
                        job.future.set_result(value)
                    else:
                        job.future.set_exception(value)
                slot.status = "READY"
            if retire:
                self._retired(True)
                return False

    def _retired(self, retire: bool) -> None:
        if retire:
            self.retiring -= 1

    async def _next_batch(self, loop: asyncio.AbstractEventLoop) -> tuple[list[Job], bool]:
        """The next batch and whether the worker must then retire: wait for one job, then gather more until
        ``batch_size`` or ``max_batch_delay`` ms after the first. Jobs whose request gave up are dropped."""
        while True:
            item = await self.queue.get()
            if item is _RETIRE:
                return [], True
            self.pending -= 1
            if not item.future.done():
                break
        jobs = [item]
        deadline = loop.time() + self.config.max_batch_delay / 1000.0
        while len(jobs) < self.config.batch_size:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if item is _RETIRE:
                return jobs, True
            self.pending -= 1
            if not item.future.done():
                jobs.append(item)
        return jobs, False

    def _fail_queued(self) -> None:
        """No worker is left: answer every waiting job now instead of letting it time out."""
        if self.error is not None:
            error = unavailable(f'Model "{self.name}" {self.error}')
        else:
            error = unavailable(f'Model "{self.name}" has no worker to serve inference request. Please use scale '
                                "workers API to add workers.")  # fmt: skip
        while True:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is _RETIRE:
                self.retiring = max(self.retiring - 1, 0)
                continue
            self.pending -= 1
            if not item.future.done():
                item.future.set_exception(error)

    async def wait_workers(self, timeout: float) -> bool:
        """Wait until the live workers match the target (all loaded, or all retired); False on a load failure
        or when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            live = self.live_slots()
            loading = any(s.status == "STARTING" for s in live)
            # retired workers count until their process has exited and the slot is gone
            if not loading and len(self.slots) <= self.target and self.ready_count() >= self.target:
                return True
            if self.error is not None and not loading:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                return False

    # ------------------------------------------------------------ requests

    async def infer(self, payload: Any) -> Any:
        """Queue one request and wait for its answer (raises HTTPError: 503 without a worker or with a full
        queue, 504 after ``response_timeout`` seconds, 4xx/500 from the handler)."""
        if self.removed:
            raise self.store.not_found(self.name)
        if not self.live_slots():
            if self.error is not None:
                raise unavailable(f'Model "{self.name}" {self.error}')
            raise unavailable(f'Model "{self.name}" has no worker to serve inference request. Please use scale '
                              "workers API to add workers.")  # fmt: skip
        limit = self.store.config.job_queue_size
        if self.pending >= limit:
            self.store.metrics.rejected.inc(self.name, "queue_full")
            raise unavailable(f'Model "{self.name}": the job queue is full ({self.pending} of {limit} waiting); '
                              "retry later", retry_after=self._retry_after())  # fmt: skip
        loop = asyncio.get_running_loop()
        job = Job(payload, loop.create_future(), loop.time())
        self.queue.put_nowait(job)
        self.pending += 1
        self.in_flight += 1
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.config.response_timeout)
        except asyncio.TimeoutError:
            self.store.metrics.rejected.inc(self.name, "timeout")
            raise HTTPError(504, "TimeoutException", f'Model "{self.name}" did not answer within '
                                                     f"{self.config.response_timeout:g} s (response_timeout)") from None
        finally:
            self.in_flight -= 1
            if not job.future.done():  # timed out or the request was cancelled: the batcher skips it
                job.future.cancel()

    def _retry_after(self) -> int:
        """Seconds until the queue has room, estimated from recent batch times (1 to 60)."""
        per_batch = self.batch_seconds or 1.0
        workers = max(self.ready_count(), 1)
        return int(min(max(math.ceil(self.pending / (self.config.batch_size * workers) * per_batch), 1), 60))


def _fail(jobs: list[Job], error: HTTPError) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)


class ModelStore:
    """The served models by name. Create it inside the running event loop."""

    def __init__(self, config: ServeConfig, metrics: ServeMetrics | None = None) -> None:
        import socket

        self.config = config
        self.metrics = metrics or ServeMetrics(socket.gethostname())
        self.metrics._view = self.view
        self.models: dict[str, ServedModel] = {}
        self.worker_ids = itertools.count(9000)
        self.closing = False

    def register(self, config: ModelConfig, *, workers: int | None = None, loaded_at_startup: bool = False,
                 strict: bool = True) -> ServedModel:  # fmt: skip
        """Add a model and start ``workers`` workers (default: its ``min_workers``). With ``strict`` an invalid
        source raises; otherwise the model is kept, FAILED, with the reason (startup models)."""
        config = self.config.resolve(config)
        if config.name in self.models:
            raise HTTPError(409, "ConflictStatusException",
                            f"Model version {self.models[config.name].version} is already registered for model "
                            f"{config.name}")  # fmt: skip
        model = ServedModel(self, config, loaded_at_startup=loaded_at_startup)
        try:
            model.kind, model.modality, model.task = inspect_source(config)
        except HubkitError as e:
            if strict:
                raise
            model.error = str(e)
            logger.error("model %s cannot be served: %s", config.name, e)
        self.models[config.name] = model
        if model.kind is not None:
            model.scale(config.min_workers if workers is None else workers)
        return model

    def worker_threads(self) -> int:
        """BLAS threads for a new worker: ``threads_per_worker`` when set, else the cores but one (left to the
        HTTP side) shared among all the workers wanted. OpenBLAS threads spin while they wait, so more threads than
        free cores make every forward pass slower (measured in bench/serve.py: 4-8x on 2 cores)."""
        if self.config.threads_per_worker is not None:
            return self.config.threads_per_worker
        workers = sum(max(m.target, 1) for m in self.models.values() if m.kind is not None)
        return max(1, ((os.cpu_count() or 1) - 1) // max(workers, 1))

    def not_found(self, name: str) -> HTTPError:
        served = sorted(self.models)
        listing = ", ".join(served) if served else "none"
        return HTTPError(404, "ModelNotFoundException", f"Model not found: {name}. Served models: {listing}",
                         extra={"models": served})  # fmt: skip

    def get(self, name: str, version: str | None = None) -> ServedModel:
        model = self.models.get(name)
        if model is None:
            raise self.not_found(name)
        if version not in (None, "", "all") and version != model.version:
            raise HTTPError(404, "ModelVersionNotFoundException",
                            f"Model version {version} does not exist for model {name}; served: {model.version}")
        return model

    async def unregister(self, name: str, version: str | None = None) -> None:
        """Remove a model: new requests get 404 at once; queued ones are answered, then its workers exit."""
        model = self.get(name, version)
        del self.models[name]
        if model.kind is not None:
            model.scale(0)
        model.removed = True
        await self._finish(list(model.slots.values()), self.config.shutdown_timeout)

    async def wait_startup(self, timeout: float) -> None:
        """Wait until no worker is still loading (each either ready or failed)."""
        for model in list(self.models.values()):
            await model.wait_workers(timeout)

    async def close(self) -> None:
        """Retire every worker after its queue is answered; kill those still busy after ``shutdown_timeout``."""
        self.closing = True
        slots: list[WorkerSlot] = []
        for model in self.models.values():
            if model.kind is not None:
                model.scale(0)
            slots += model.slots.values()
        await self._finish(slots, self.config.shutdown_timeout)

    @staticmethod
    async def _finish(slots: list[WorkerSlot], timeout: float) -> None:
        tasks = {s.task: s for s in slots if s.task is not None}
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        if late:
            logger.warning("%d worker(s) still busy after %g s; killing them", len(late), timeout)
            for task in late:
                await asyncio.to_thread(tasks[task].process.kill)
            await asyncio.wait(late, timeout=10)

    def healthy(self) -> bool:
        """TorchServe's ping: every model that should have workers has a ready one, and none failed to load."""
        for model in self.models.values():
            if model.status == "FAILED" or (model.target > 0 and not model.ready_count()):
                return False
        return True

    def view(self) -> dict[str, dict[str, Any]]:
        return {name: {"queue": m.pending, "in_flight": m.in_flight, "workers": m.worker_counts()}
                for name, m in self.models.items()}  # fmt: skip
