"""What a backend hands back for a started collective, and the reduction operations."""

from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """torch.distributed's ``ReduceOp`` (the values are torch's ``RedOpType`` numbers)."""

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4

    def __repr__(self) -> str:
        return f"<RedOpType.{self.name}: {self.value}>"


class Pending:
    """A collective a backend has started: ``test()`` polls it (True once done, raising if the backend
    reports a failure); ``finish()`` runs once after that (dividing for AVG, copying a staged result)."""

    def test(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        """Give up on the operation after a timeout (NCCL aborts its communicator; MPI has nothing to do)."""
