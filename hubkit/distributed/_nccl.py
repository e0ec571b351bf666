"""The ``"nccl"`` backend: collectives on cupy arrays through cupy's NCCL bindings, one GPU per process.

Each operation runs on the group's own CUDA stream, after the work already queued on the current stream
(an event orders them), so gradient buckets are reduced while backward keeps computing on the current
stream. ``Work.wait`` polls the operation's completion event: it can give up after the timeout (and abort
the communicator, as torch's NCCL watchdog does) instead of blocking in the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit.distributed._pending import Pending, ReduceOp
from hubkit.errors import DistributedError, MissingDependencyError


def import_nccl() -> tuple[Any, Any]:
    """(cupy, cupy.cuda.nccl), or a MissingDependencyError saying what to install."""
    from hubkit._backend import cupy_module

    cp = cupy_module()
    try:
        from cupy.cuda import nccl
    except ImportError as e:
        raise MissingDependencyError(f"the 'nccl' backend needs cupy's NCCL bindings ({e}): pip install "
                                     "'nvidia-nccl-cu12' (or -cu13, matching cupy)") from None
    if not getattr(nccl, "available", True):
        raise MissingDependencyError("cupy cannot load the NCCL library: pip install 'nvidia-nccl-cu12' (or -cu13, "
                                     "matching your cupy-cuda12x/13x)")
    return cp, nccl


class _NCCLPending(Pending):
    def __init__(self, backend: NCCLBackend, done: Any, finish: Callable[[], None] | None, keep: tuple) -> None:
        self._backend = backend
        self._done = done
        self._finish = finish
        self._keep = keep  # buffers the stream still reads or writes: alive until the operation is over

    def test(self) -> bool:
        if self._done.done:
            return True
        try:
            self._backend.comm.check_async_error()
        except Exception as e:  # cupy_backends...NcclError
            raise DistributedError(f"NCCL reported an error while completing the operation: {e}") from None
        return False

    def finish(self) -> None:
        # later work on the current stream reads the result: order it after the collective
        self._backend.cp.cuda.get_current_stream().wait_event(self._done)
        if self._finish is not None:
            self._finish()
            self._finish = None
        self._keep = ()

    def abort(self) -> None:
        self._backend.abort()


class NCCLBackend:
    """Collectives over one NCCL communicator (one GPU per process)."""

    name = "nccl"

    def __init__(self, comm: Any, rank: int, size: int) -> None:
        self.cp, self.nccl = import_nccl()
        self.comm = comm
        self.rank = rank
        self.size = size
        self.stream = self.cp.cuda.Stream(non_blocking=True)
        self._aborted = False

    @classmethod
    def create(cls, rank: int, size: int, device_index: int, share: Callable[[Any], Any]) -> NCCLBackend:
        """Join a communicator of ``size`` ranks; ``share(uid)`` returns rank 0's unique id on every rank."""
        cp, nccl = import_nccl()
        cp.cuda.Device(device_index).use()
        uid = nccl.get_unique_id() if rank == 0 else None
        uid = share(uid)
        return cls(nccl.NcclCommunicator(size, uid, rank), rank, size)

    # ------------------------------------------------------------ arrays
    def _dtype(self, dtype: np.dtype) -> int:
        nccl = self.nccl
        table = {np.dtype(np.int8): nccl.NCCL_INT8, np.dtype(np.uint8): nccl.NCCL_UINT8,
                 np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.uint32): nccl.NCCL_UINT32,
                 np.dtype(np.int64): nccl.NCCL_INT64, np.dtype(np.uint64): nccl.NCCL_UINT64,
                 np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
                 np.dtype(np.float64): nccl.NCCL_FLOAT64}
        if np.dtype(dtype) not in table:
            raise DistributedError(f"NCCL cannot communicate {dtype} arrays; use a float or integer dtype")
        return table[np.dtype(dtype)]

    def _op(self, op: ReduceOp, dtype: np.dtype) -> int:
        nccl = self.nccl
        if dtype == np.bool_:  # reduced as uint8: or = max, and = min
            return {ReduceOp.SUM: nccl.NCCL_MAX, ReduceOp.MAX: nccl.NCCL_MAX, ReduceOp.MIN: nccl.NCCL_MIN,
                    ReduceOp.PRODUCT: nccl.NCCL_MIN}[op]
        return {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_AVG, ReduceOp.MAX: nccl.NCCL_MAX,
                ReduceOp.MIN: nccl.NCCL_MIN, ReduceOp.PRODUCT: nccl.NCCL_PROD}[op]

    @staticmethod
    def _raw(a: Any) -> Any:
        return a.view(np.uint8) if a.dtype == np.bool_ else a

    def _launch(self, run: Callable[[int], None], keep: tuple, finish: Callable[[], None] | None = None) -> Pending:
        if self._aborted:
            raise DistributedError("this NCCL communicator was aborted after an earlier failure")
        cp = self.cp
        ready = cp.cuda.Event(disable_timing=True)
        ready.record(cp.cuda.get_current_stream())
        self.stream.wait_event(ready)
        run(self.stream.ptr)
        done = cp.cuda.Event(disable_timing=True)
        done.record(self.stream)
        return _NCCLPending(self, done, finish, keep)

    def all_reduce(self, buf: Any, op: ReduceOp) -> Pending:
        raw = self._raw(buf)
        dt, nop = self._dtype(raw.dtype), self._op(op, buf.dtype)
        return self._launch(lambda s: self.comm.allReduce(raw.data.ptr, raw.data.ptr, raw.size, dt, nop, s), (raw,))

    def broadcast(self, buf: Any, src: int) -> Pending:
        raw = self._raw(buf)
        dt = self._dtype(raw.dtype)
        return self._launch(lambda s: self.comm.broadcast(raw.data.ptr, raw.data.ptr, raw.size, dt, src, s), (raw,))

    def all_gather(self, send: Any, recv: Any) -> Pending:
        """``recv: (size, *send.shape)``."""
        rs, rr = self._raw(send), self._raw(recv)
        dt = self._dtype(rs.dtype)
        return self._launch(lambda s: self.comm.allGather(rs.data.ptr, rr.data.ptr, rs.size, dt, s), (rs, rr))

    def reduce_scatter(self, send: Any, recv: Any, op: ReduceOp) -> Pending:
        """``send: (size, *recv.shape)``."""
        rs, rr = self._raw(send), self._raw(recv)
        dt, nop = self._dtype(rs.dtype), self._op(op, send.dtype)
        return self._launch(lambda s: self.comm.reduceScatter(rs.data.ptr, rr.data.ptr, rr.size, dt, nop, s),
                            (rs, rr))

    def barrier(self) -> Pending:
        token = self.cp.zeros(1, dtype=np.float32)
        return self.all_reduce(token, ReduceOp.SUM)

    # ------------------------------------------------------------ groups
    def split(self, ranks: list[int], share: Callable[[Any, int], Any]) -> NCCLBackend | None:
        """A communicator over ``ranks`` (collective over this group); ``share(obj, src)`` broadcasts an object."""
        uid = self.nccl.get_unique_id() if self.rank == ranks[0] else None
        uid = share(uid, ranks[0])
        if self.rank not in ranks:
            return None
        return NCCLBackend(self.nccl.NcclCommunicator(len(ranks), uid, ranks.index(self.rank)), ranks.index(self.rank),
                           len(ranks))

    def abort(self) -> None:
        if not self._aborted:
            self._aborted = True
            self.comm.abort()

    def destroy(self) -> None:
        if not self._aborted:
            self.comm.destroy()
