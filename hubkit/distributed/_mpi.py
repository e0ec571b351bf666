"""The ``"mpi"`` backend: collectives on numpy arrays through mpi4py's non-blocking calls.

Every collective is started with MPI's non-blocking form (``Iallreduce``, ``Ibcast``, ...) and completed by
polling ``Test``, so ``Work.wait`` can give up after the group's timeout and notice a failed peer instead
of blocking inside MPI forever. The processes come from the MPI launcher (``mpiexec`` / ``hubkit run``):
rank and size are MPI's.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hubkit.distributed._pending import Pending, ReduceOp
from hubkit.errors import DistributedError, MissingDependencyError


def import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise MissingDependencyError(
            f"the 'mpi' backend needs mpi4py and an MPI library ({e}): pip install 'hubkit[distributed]' "
            "(mpi4py and the MPICH wheel, which brings mpiexec), or use backend='nccl' on GPUs") from None
    return MPI


class _MPIRequest(Pending):
    def __init__(self, request: Any, finish: Any = None) -> None:
        self._request = request
        self._finish = finish

    def test(self) -> bool:
        try:
            return bool(self._request.Test())
        except Exception as e:  # mpi4py.MPI.Exception: MPI reported a failure (a peer's connection broke)
            raise DistributedError(f"MPI reported an error while completing the operation: {e}") from None

    def finish(self) -> None:
        if self._finish is not None:
            self._finish()
            self._finish = None


class MPIBackend:
    """Collectives over one MPI communicator (the world's, or one made by ``new_group``)."""

    name = "mpi"

    def __init__(self, comm: Any) -> None:
        self.MPI = import_mpi()
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    @classmethod
    def world(cls) -> MPIBackend:
        MPI = import_mpi()
        comm = MPI.COMM_WORLD.Dup()  # a private communicator: user code on COMM_WORLD cannot mix with ours
        env_size = os.environ.get("WORLD_SIZE")
        if env_size is not None and env_size.isdigit() and int(env_size) != comm.Get_size():
            raise DistributedError(
                f"backend 'mpi' takes its processes from the MPI launcher, which started {comm.Get_size()} "
                f"(this process sees WORLD_SIZE={env_size}): launch the script with `hubkit run --nproc "
                f"{env_size} script.py` or `mpiexec -n {env_size} python script.py`, or use backend='nccl' "
                "for processes started with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT")
        return cls(comm)

    def local_rank(self) -> int:
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED, key=self.rank)
        try:
            return node.Get_rank()
        finally:
            node.Free()

    # ------------------------------------------------------------ collectives on contiguous arrays
    def _op(self, op: ReduceOp, dtype: np.dtype) -> Any:
        MPI = self.MPI
        if dtype == np.bool_:
            return {ReduceOp.SUM: MPI.LOR, ReduceOp.MAX: MPI.LOR, ReduceOp.MIN: MPI.LAND,
                    ReduceOp.PRODUCT: MPI.LAND}[op]
        return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN,
                ReduceOp.PRODUCT: MPI.PROD}[op]

    def all_reduce(self, buf: np.ndarray, op: ReduceOp) -> Pending:
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buf, self._op(op, buf.dtype))
        return _MPIRequest(request, _divide(buf, self.size) if op is ReduceOp.AVG else None)

    def broadcast(self, buf: np.ndarray, src: int) -> Pending:
        return _MPIRequest(self.comm.Ibcast(buf, root=src))

    def all_gather(self, send: np.ndarray, recv: np.ndarray) -> Pending:
        """``recv: (size, *send.shape)``."""
        return _MPIRequest(self.comm.Iallgather(send, recv))

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray, op: ReduceOp) -> Pending:
        """``send: (size, *recv.shape)``; rank r receives the reduction of every rank's ``send[r]``."""
        request = self.comm.Ireduce_scatter_block(send, recv, self._op(op, send.dtype))
        return _MPIRequest(request, _divide(recv, self.size) if op is ReduceOp.AVG else None)

    def barrier(self) -> Pending:
        return _MPIRequest(self.comm.Ibarrier())

    # ------------------------------------------------------------ groups
    def split(self, ranks: list[int]) -> MPIBackend | None:
        """A backend over ``ranks`` of this one (collective: every rank calls it); None where not a member."""
        member = self.rank in ranks
        sub = self.comm.Split(0 if member else self.MPI.UNDEFINED, ranks.index(self.rank) if member else 0)
        return MPIBackend(sub) if member else None

    def destroy(self) -> None:
        if self.comm != self.MPI.COMM_NULL:
            self.comm.Free()


def _divide(buf: np.ndarray, n: int) -> Any:
    def finish() -> None:
        np.divide(buf, buf.dtype.type(n), out=buf)

    return finish
