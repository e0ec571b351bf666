"""Process groups and collectives with torch.distributed's names and meanings.

A collective takes hubkit Tensors (CPU tensors on the ``"mpi"`` backend, CUDA tensors on ``"nccl"``), works
in place like torch's, and returns ``None`` or, with ``async_op=True``, a :class:`Work` whose ``wait()``
completes it. Waiting polls the operation: it raises :class:`~hubkit.errors.DistributedError` when the
launcher reports that another process failed, or when the group's timeout passes, and the group is
unusable from then on (as after a torch NCCL timeout).
"""

from __future__ import annotations

import datetime
import os
import pickle
import time
from typing import Any

import numpy as np

from hubkit.distributed import _faults
from hubkit.distributed._pending import Pending, ReduceOp
from hubkit.errors import ArgumentError, DistributedError

# torch's defaults (init_process_group's docstring): 10 minutes for NCCL, 30 for the other backends
_DEFAULT_TIMEOUT = {"mpi": datetime.timedelta(minutes=30), "nccl": datetime.timedelta(minutes=10)}
# polling: spin this long on a fresh operation (small messages finish within it), then sleep between polls,
# doubling up to _MAX_SLEEP so an idle wait costs ~nothing while a rank on another core computes
_SPIN_S = 5e-5
_MIN_SLEEP, _MAX_SLEEP = 2e-5, 1e-3


class ProcessGroup:
    """A set of ranks that run collectives together: the world, or one made by :func:`new_group`."""

    def __init__(self, impl: Any, ranks: list[int], timeout: datetime.timedelta) -> None:
        self._impl = impl
        self.ranks = ranks  # the members' ranks in the world, in group-rank order
        self.timeout = timeout

    def rank(self) -> int:
        return self._impl.rank

    def size(self) -> int:
        return self._impl.size

    def name(self) -> str:
        return self._impl.name

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self._impl.name!r}, rank={self.rank()}, size={self.size()})"


class _Group:
    """``dist.group.WORLD`` / ``dist.GroupMember.WORLD``: the default group once it is initialized."""

    NON_GROUP_MEMBER = object()

    @property
    def WORLD(self) -> ProcessGroup | None:  # noqa: N802  (torch's name)
        return _world.group


group = _Group()
GroupMember = group


class _World:
    def __init__(self) -> None:
        self.group: ProcessGroup | None = None
        self.local_rank = 0
        self.subgroups: list[ProcessGroup] = []


_world = _World()


class Work:
    """A started collective (``async_op=True``); ``wait()`` completes it."""

    def __init__(self, pending: Pending, pg: ProcessGroup, what: str) -> None:
        self._pending = pending
        self._group = pg
        self._what = what
        self._start = time.monotonic()
        self._done = False

    def is_completed(self) -> bool:
        """Poll once: True when the operation is over (its result is then in place)."""
        if not self._done and self._pending.test():
            self._complete()
        return self._done

    def wait(self, timeout: datetime.timedelta | float | None = None) -> bool:
        """Block until the operation is over; raises ``DistributedError`` after the timeout or a peer's failure."""
        if self._done:
            return True
        limit = _seconds(timeout) if timeout is not None else self._group.timeout.total_seconds()
        deadline = self._start + limit
        sleep = 0.0
        while not self._pending.test():
            if _faults.peer_failed():
                self._fail("could not complete: another process of this job exited abnormally (its launcher "
                           "reported it; that rank's own error is printed above). Fix its failure and relaunch")
            now = time.monotonic()
            if now >= deadline:
                self._fail(f"did not complete within {limit:g} s: a rank may have failed, been killed or hung, "
                           "or the ranks are not calling the same collectives in the same order. Check the other "
                           "ranks' output; pass a larger timeout= to init_process_group if a step really takes "
                           "this long")
            if now - self._start > _SPIN_S:
                sleep = min(max(sleep * 2, _MIN_SLEEP), _MAX_SLEEP)
                time.sleep(sleep)
        self._complete()
        return True

    def _complete(self) -> None:
        self._pending.finish()
        self._done = True

    def _fail(self, why: str) -> None:
        message = (f"{self._what} on rank {self._group.rank()} of {self._group.size()} ({self._group.name()} "
                   f"backend) {why}")
        self._pending.abort()
        _faults.mark_broken(message)
        raise DistributedError(message)


def _seconds(timeout: datetime.timedelta | float) -> float:
    return timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)


# ---------------------------------------------------------------- initialization


def is_available() -> bool:
    """True: hubkit.distributed is importable (the backends' libraries are checked by init_process_group)."""
    return True


def is_mpi_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("cupy") is not None


def is_initialized() -> bool:
    return _world.group is not None


def _env_int(*names: str) -> int | None:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().lstrip("-").isdigit():
            return int(value)
    return None


# rank, size and local rank as torchrun / hubkit run, MPICH's hydra and Open MPI export them
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK")
_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_LOCAL_RANK_VARS = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK")


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | float | None = None, world_size: int = -1, rank: int = -1,
                       store: Any = None, group_name: str = "", pg_options: Any = None,
                       device_id: Any = None) -> None:
    """Join the default process group.

    ``backend``: ``"mpi"`` (CPU tensors; the processes, their ranks and the world size come from the MPI
    launcher: ``hubkit run --nproc N script.py`` or ``mpiexec -n N python script.py``), ``"nccl"`` (CUDA
    tensors, one GPU per process: rank and size from ``rank=``/``world_size=``, else ``RANK``/``WORLD_SIZE``,
    else the MPI launcher's variables; rank 0's NCCL id travels over MPI when MPI started the job, else over
    TCP to ``MASTER_ADDR``:``MASTER_PORT`` or ``init_method="tcp://host:port"``). ``"gloo"``, torch's CPU
    backend, and ``None`` mean ``"mpi"``. ``timeout`` bounds every collective (default 30 min, NCCL 10).
    """
    if _world.group is not None:
        raise DistributedError("trying to initialize the default process group twice: call "
                               "destroy_process_group() first, or check is_initialized()")
    if store is not None:
        raise ArgumentError("init_process_group(store=...): hubkit has no Store objects; the MPI launcher or "
                            "MASTER_ADDR/MASTER_PORT (init_method='tcp://host:port') does the rendezvous")
    name = "mpi" if backend in (None, "gloo", "mpi", "GLOO", "MPI") else str(backend).lower()
    if name not in ("mpi", "nccl"):
        raise ArgumentError(f"init_process_group(backend={backend!r}): hubkit's backends are 'mpi' (CPU; 'gloo' "
                            "is taken to mean it) and 'nccl' (GPU)")
    limit = _DEFAULT_TIMEOUT[name] if timeout is None else (
        timeout if isinstance(timeout, datetime.timedelta) else datetime.timedelta(seconds=float(timeout)))
    _faults.reset()
    if name == "mpi":
        from hubkit.distributed._mpi import MPIBackend

        impl = MPIBackend.world()
        if rank >= 0 and rank != impl.rank or world_size > 0 and world_size != impl.size:
            raise DistributedError(f"init_process_group(rank={rank}, world_size={world_size}) disagrees with the MPI "
                                   f"launcher (rank {impl.rank} of {impl.size}); the 'mpi' backend takes them from "
                                   "MPI, so leave them out")
        env_local = _env_int("LOCAL_RANK")
        local = env_local if env_local is not None else impl.local_rank()
    else:
        impl, local = _init_nccl(init_method, limit.total_seconds(), world_size, rank, device_id)
    _world.group = ProcessGroup(impl, list(range(impl.size)), limit)
    _world.local_rank = local
    if impl.size > 1:
        _faults.install()


def _init_nccl(init_method: str | None, timeout: float, world_size: int, rank: int,
               device_id: Any) -> tuple[Any, int]:
    from hubkit.distributed._nccl import NCCLBackend, import_nccl

    rank = rank if rank >= 0 else _env_int(*_RANK_VARS)
    size = world_size if world_size > 0 else _env_int(*_SIZE_VARS)
    if rank is None or size is None:
        raise DistributedError("backend 'nccl' needs this process's rank and the world size: start the processes "
                               "with `hubkit run --nproc N script.py` (or torchrun, or mpiexec), or set RANK and "
                               "WORLD_SIZE, or pass rank= and world_size=")
    if not 0 <= rank < size:
        raise DistributedError(f"rank {rank} is outside [0, {size - 1}] for a world of {size}")
    local = _env_int(*_LOCAL_RANK_VARS)
    local = rank if local is None else local
    cp, _ = import_nccl()
    if device_id is not None:
        device_index = int(getattr(device_id, "index", device_id) or 0)
    else:
        device_index = local % max(cp.cuda.runtime.getDeviceCount(), 1)
    mpi_launched = any(v in os.environ for v in ("PMI_RANK", "OMPI_COMM_WORLD_RANK")) and is_mpi_available()
    if size == 1:
        def share(uid: Any) -> Any:
            return uid
    elif mpi_launched and not (init_method or "").startswith("tcp://"):
        from hubkit.distributed._mpi import import_mpi

        def share(uid: Any) -> Any:
            return import_mpi().COMM_WORLD.bcast(uid, root=0)
    else:
        addr, port = _master_address(init_method)

        def share(uid: Any) -> Any:
            from hubkit.distributed._rendezvous import share_from_rank0

            payload = pickle.dumps(uid) if rank == 0 else None
            return pickle.loads(share_from_rank0(payload, rank, size, addr, port, timeout))
    return NCCLBackend.create(rank, size, device_index, share), local


def _master_address(init_method: str | None) -> tuple[str, int]:
    if init_method and init_method.startswith("tcp://"):
        host, _, port = init_method[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit():
            raise ArgumentError(f"init_method={init_method!r}: write tcp://HOST:PORT")
        return host.strip("[]"), int(port)
    if init_method not in (None, "env://"):
        raise ArgumentError(f"init_method={init_method!r}: use 'env://' (MASTER_ADDR/MASTER_PORT) or "
                            "'tcp://HOST:PORT'")
    addr = os.environ.get("MASTER_ADDR")
    port = os.environ.get("MASTER_PORT")
    if addr is None or port is None or not port.isdigit():
        raise DistributedError(f"backend 'nccl' outside an MPI job needs MASTER_ADDR and MASTER_PORT (got "
                               f"MASTER_ADDR={addr!r}, MASTER_PORT={port!r}): `hubkit run` sets them")
    return addr, int(port)


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leave ``group`` (default: every group, the world included; ``init_process_group`` may follow)."""
    targets = ([group] if group is not None and group is not _world.group
               else [*_world.subgroups, _world.group] if _world.group is not None else [])
    healthy = _faults.broken_reason() is None  # a communicator with requests still pending is not freed
    for pg in targets:
        if healthy:
            pg._impl.destroy()
        if pg in _world.subgroups:
            _world.subgroups.remove(pg)
    if group is None or group is _world.group:
        _world.group = None
        _world.subgroups = []


def _resolve(group: ProcessGroup | None) -> ProcessGroup:
    if _world.group is None:
        raise DistributedError("Default process group has not been initialized, please make sure to call "
                               "init_process_group.")
    if group is GroupMember.NON_GROUP_MEMBER:
        raise DistributedError("this rank is not a member of the group it passed to a collective")
    broken = _faults.broken_reason()
    if broken is not None:
        raise DistributedError(f"the process group is unusable after an earlier failure: {broken}")
    return _world.group if group is None else group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in ``group`` (-1 when it is not a member)."""
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _resolve_quiet(group).rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    """The number of ranks in ``group`` (-1 when this process is not a member)."""
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _resolve_quiet(group).size()


def get_local_rank() -> int:
    """This process's rank among the processes on its machine (``LOCAL_RANK``; with MPI, its node's rank)."""
    _resolve_quiet(None)
    return _world.local_rank


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """torch's name: the local rank from ``LOCAL_RANK``, else from the initialized group, else ``fallback_rank``."""
    env = _env_int("LOCAL_RANK")
    if env is not None:
        return env
    if _world.group is not None:
        return _world.local_rank
    if fallback_rank is not None:
        return int(fallback_rank)
    raise DistributedError("LOCAL_RANK is not set and no process group is initialized; pass fallback_rank=")


def get_backend(group: ProcessGroup | None = None) -> str:
    return _resolve_quiet(group).name()


def _resolve_quiet(group: ProcessGroup | None) -> ProcessGroup:
    """Like _resolve, but usable after a failure (rank and size queries still answer)."""
    if _world.group is None:
        raise DistributedError("Default process group has not been initialized, please make sure to call "
                               "init_process_group.")
    return _world.group if group is None else group


def new_group(ranks: list[int] | None = None, timeout: datetime.timedelta | float | None = None,
              backend: str | None = None, pg_options: Any = None, use_local_synchronization: bool = False,
              group_desc: str | None = None) -> Any:
    """A group of ``ranks`` (world ranks; default all). Every rank of the world must call it, members or
    not; non-members get ``GroupMember.NON_GROUP_MEMBER``."""
    world = _resolve(None)
    members = sorted(set(range(world.size()) if ranks is None else (int(r) for r in ranks)))
    if not members or members[0] < 0 or members[-1] >= world.size():
        raise ArgumentError(f"new_group(ranks={ranks}): ranks must be a non-empty subset of 0..{world.size() - 1}")
    if backend is not None and str(backend).lower() not in (world.name(), "gloo" if world.name() == "mpi" else ""):
        raise ArgumentError(f"new_group(backend={backend!r}): a group uses the world's backend ({world.name()!r})")
    limit = world.timeout if timeout is None else (
        timeout if isinstance(timeout, datetime.timedelta) else datetime.timedelta(seconds=float(timeout)))
    if world.name() == "nccl":
        impl = world._impl.split(members, lambda obj, src: _broadcast_object(obj, src, world))
    else:
        impl = world._impl.split(members)
    if impl is None:
        return GroupMember.NON_GROUP_MEMBER
    pg = ProcessGroup(impl, members, limit)
    _world.subgroups.append(pg)
    return pg


# ---------------------------------------------------------------- tensor collectives


def _array_for(tensor: Any, pg: ProcessGroup, what: str) -> Any:
    from hubkit.tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise ArgumentError(f"{what} takes hubkit Tensors, got {type(tensor).__name__}")
    cuda = type(tensor.array).__module__.startswith("cupy")
    if cuda != (pg.name() == "nccl"):
        raise ArgumentError(f"{what}: the {pg.name()!r} backend communicates "
                            f"{'CUDA' if pg.name() == 'nccl' else 'CPU'} tensors, but this tensor is on "
                            f"{tensor.device}; move it with .to(...) or use backend="
                            f"{'nccl' if cuda else 'mpi'!r}")
    return tensor.array


def _staged(array: Any) -> tuple[Any, Any]:
    """A C-contiguous buffer for ``array`` and what copies it back (None when ``array`` itself will do)."""
    if array.flags.c_contiguous:
        return array, None
    xp = _xp(array)
    buf = xp.ascontiguousarray(array)

    def copy_back() -> None:
        array[...] = buf

    return buf, copy_back


def _xp(array: Any) -> Any:
    from hubkit._backend import get_array_module

    return get_array_module(array)


class _Then(Pending):
    """``inner``, then ``after()`` once it is over."""

    def __init__(self, inner: Pending, after: Any) -> None:
        self._inner = inner
        self._after = after

    def test(self) -> bool:
        return self._inner.test()

    def finish(self) -> None:
        self._inner.finish()
        if self._after is not None:
            self._after()
            self._after = None

    def abort(self) -> None:
        self._inner.abort()


def _run(pending: Pending, pg: ProcessGroup, what: str, async_op: bool) -> Work | None:
    work = Work(pending, pg, what)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor: Any, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None,
               async_op: bool = False) -> Work | None:
    """Reduce ``tensor`` over the group's ranks, in place on every rank (``AVG``: floating tensors only)."""
    pg = _resolve(group)
    array = _array_for(tensor, pg, "all_reduce")
    op = _check_op(op, array.dtype, "all_reduce")
    buf, copy_back = _staged(array)
    return _run(_Then(pg._impl.all_reduce(buf, op), copy_back), pg, f"all_reduce({op.name})", async_op)


def _check_op(op: Any, dtype: Any, what: str) -> ReduceOp:
    if not isinstance(op, ReduceOp):
        raise ArgumentError(f"{what}: op must be a ReduceOp (SUM, AVG, PRODUCT, MIN, MAX), got {op!r}")
    if op is ReduceOp.AVG and np.dtype(dtype).kind != "f":
        raise ArgumentError(f"{what}: ReduceOp.AVG needs a floating-point tensor, got {np.dtype(dtype)}; reduce "
                            "with SUM and divide")
    return op


def broadcast(tensor: Any, src: int, group: ProcessGroup | None = None, async_op: bool = False,
              group_src: int | None = None) -> Work | None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank (``src`` is a world rank)."""
    pg = _resolve(group)
    root = _group_rank(pg, src, group_src, "broadcast", "src")
    buf, copy_back = _staged(_array_for(tensor, pg, "broadcast"))
    return _run(_Then(pg._impl.broadcast(buf, root), copy_back), pg, f"broadcast(src={src})", async_op)


def _group_rank(pg: ProcessGroup, rank: int | None, group_rank: int | None, what: str, name: str) -> int:
    if group_rank is not None:
        if not 0 <= group_rank < pg.size():
            raise ArgumentError(f"{what}: group_{name}={group_rank} is outside the group's 0..{pg.size() - 1}")
        return int(group_rank)
    if rank not in pg.ranks:
        raise ArgumentError(f"{what}: {name}={rank} is not a member of the group (its world ranks are {pg.ranks})")
    return pg.ranks.index(rank)


def all_gather(tensor_list: list[Any], tensor: Any, group: ProcessGroup | None = None,
               async_op: bool = False) -> Work | None:
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` on every rank (one pre-made tensor per rank)."""
    pg = _resolve(group)
    array = _array_for(tensor, pg, "all_gather")
    outs = _check_list(tensor_list, pg, array, "all_gather", "tensor_list")
    xp = _xp(array)
    send = xp.ascontiguousarray(array)
    recv = xp.empty((pg.size(), *array.shape), dtype=array.dtype)

    def scatter_out() -> None:
        for r, out in enumerate(outs):
            out[...] = recv[r]

    return _run(_Then(pg._impl.all_gather(send, recv), scatter_out), pg, "all_gather", async_op)


def _check_list(tensors: Any, pg: ProcessGroup, like: Any, what: str, name: str) -> list[Any]:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != pg.size():
        found = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ArgumentError(f"{what}: {name} must hold one tensor per rank ({pg.size()}), got {found}")
    arrays = [_array_for(t, pg, what) for t in tensors]
    for r, a in enumerate(arrays):
        if a.shape != like.shape or a.dtype != like.dtype:
            raise ArgumentError(f"{what}: {name}[{r}] has shape {tuple(a.shape)} and dtype {a.dtype}; every entry "
                                f"must match the tensor's shape {tuple(like.shape)} and dtype {like.dtype}")
    return arrays


def all_gather_into_tensor(output_tensor: Any, input_tensor: Any, group: ProcessGroup | None = None,
                           async_op: bool = False) -> Work | None:
    """``output_tensor: (size * N, ...)`` (or ``(size, N, ...)``): every rank's ``input_tensor: (N, ...)``, in rank
    order."""
    pg = _resolve(group)
    inp = _array_for(input_tensor, pg, "all_gather_into_tensor")
    out = _array_for(output_tensor, pg, "all_gather_into_tensor")
    if out.size != inp.size * pg.size() or out.dtype != inp.dtype:
        raise ArgumentError(f"all_gather_into_tensor: the output must hold {pg.size()} inputs of shape "
                            f"{tuple(inp.shape)} ({inp.dtype}), got shape {tuple(out.shape)} ({out.dtype})")
    xp = _xp(inp)
    recv, copy_back = _staged(out)
    send = xp.ascontiguousarray(inp)
    pending = pg._impl.all_gather(send, recv.reshape(pg.size(), *inp.shape))
    return _run(_Then(pending, copy_back), pg, "all_gather_into_tensor", async_op)


def reduce_scatter(output: Any, input_list: list[Any], op: ReduceOp = ReduceOp.SUM,
                   group: ProcessGroup | None = None, async_op: bool = False) -> Work | None:
    """Rank r's ``output`` becomes the reduction over ranks of their ``input_list[r]``."""
    pg = _resolve(group)
    out = _array_for(output, pg, "reduce_scatter")
    ins = _check_list(input_list, pg, out, "reduce_scatter", "input_list")
    op = _check_op(op, out.dtype, "reduce_scatter")
    send = _xp(out).stack(ins)
    recv, copy_back = _staged(out)
    return _run(_Then(pg._impl.reduce_scatter(send, recv, op), copy_back), pg, f"reduce_scatter({op.name})",
                async_op)


def reduce_scatter_tensor(output: Any, input: Any, op: ReduceOp = ReduceOp.SUM,  # noqa: A002  (torch's name)
                          group: ProcessGroup | None = None, async_op: bool = False) -> Work | None:
    """``input: (size * N, ...)``; rank r's ``output: (N, ...)`` is the reduction of every rank's r-th slice."""
    pg = _resolve(group)
    out = _array_for(output, pg, "reduce_scatter_tensor")
    inp = _array_for(input, pg, "reduce_scatter_tensor")
    if inp.size != out.size * pg.size() or inp.dtype != out.dtype:
        raise ArgumentError(f"reduce_scatter_tensor: the input must hold {pg.size()} outputs of shape "
                            f"{tuple(out.shape)} ({out.dtype}), got shape {tuple(inp.shape)} ({inp.dtype})")
    op = _check_op(op, out.dtype, "reduce_scatter_tensor")
    send = _xp(inp).ascontiguousarray(inp).reshape(pg.size(), *out.shape)
    recv, copy_back = _staged(out)
    return _run(_Then(pg._impl.reduce_scatter(send, recv, op), copy_back), pg,
                f"reduce_scatter_tensor({op.name})", async_op)


def barrier(group: ProcessGroup | None = None, async_op: bool = False, device_ids: Any = None) -> Work | None:
    """Wait until every rank of the group has reached this call."""
    pg = _resolve(group)
    return _run(pg._impl.barrier(), pg, "barrier", async_op)


# ---------------------------------------------------------------- object collectives


def _to_device(array: np.ndarray, pg: ProcessGroup) -> Any:
    if pg.name() == "nccl":
        return pg._impl.cp.asarray(array)
    return array


def _to_host(array: Any) -> np.ndarray:
    return array.get() if hasattr(array, "get") else array


def all_gather_object(object_list: list[Any], obj: Any, group: ProcessGroup | None = None) -> None:
    """Fill ``object_list`` (one slot per rank) with every rank's picklable ``obj``, in rank order."""
    pg = _resolve(group)
    if not isinstance(object_list, list) or len(object_list) != pg.size():
        raise ArgumentError(f"all_gather_object: object_list must be a list with one slot per rank ({pg.size()}), "
                            f"e.g. [None] * world_size")
    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
    lengths = _to_device(np.zeros(pg.size(), dtype=np.int64), pg)
    Work(pg._impl.all_gather(_to_device(np.array([data.size], dtype=np.int64), pg), lengths), pg,
         "all_gather_object (sizes)").wait()
    sizes = _to_host(lengths).tolist()
    padded = np.zeros(max(sizes), dtype=np.uint8)
    padded[: data.size] = data
    recv = _to_device(np.empty((pg.size(), max(sizes)), dtype=np.uint8), pg)
    Work(pg._impl.all_gather(_to_device(padded, pg), recv), pg, "all_gather_object").wait()
    host = _to_host(recv)
    for r, n in enumerate(sizes):
        object_list[r] = pickle.loads(host[r, :n].tobytes())


def broadcast_object_list(object_list: list[Any], src: int | None = None, group: ProcessGroup | None = None,
                          device: Any = None, group_src: int | None = None) -> None:
    """Replace ``object_list``'s items on every rank by rank ``src``'s (default 0); the lists must be equally long."""
    pg = _resolve(group)
    root = _group_rank(pg, 0 if src is None and group_src is None else src, group_src, "broadcast_object_list",
                       "src")
    if not isinstance(object_list, list):
        raise ArgumentError(f"broadcast_object_list takes a list, got {type(object_list).__name__}")
    received = _broadcast_object(object_list if pg.rank() == root else None, root, pg, len(object_list))
    object_list[:] = received


def _broadcast_object(obj: Any, root: int, pg: ProcessGroup, count: int | None = None) -> Any:
    """Rank ``root``'s ``obj`` on every rank of ``pg`` (``root`` is a group rank)."""
    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8) if pg.rank() == root else None
    header = np.array([0 if data is None else data.size, -1 if count is None else count], dtype=np.int64)
    header_dev = _to_device(header, pg)
    Work(pg._impl.broadcast(header_dev, root), pg, "broadcast_object_list (sizes)").wait()
    size, root_count = _to_host(header_dev).tolist()
    buf = _to_device(data.copy() if data is not None else np.empty(size, dtype=np.uint8), pg)
    Work(pg._impl.broadcast(buf, root), pg, "broadcast_object_list").wait()
    if count is not None and root_count != count:  # raised after the broadcast, so rank src is not left waiting
        raise ArgumentError(f"broadcast_object_list: rank {pg.ranks[root]} passed a list of {root_count} objects "
                            f"and this rank one of {count}; every rank must pass a list of the same length")
    return pickle.loads(_to_host(buf).tobytes())
