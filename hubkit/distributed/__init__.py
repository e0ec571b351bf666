"""``hubkit.distributed``: process groups and collectives, with torch.distributed's names and meanings.

    import hubkit.distributed as dist
    dist.init_process_group("mpi")            # CPU processes started by `hubkit run --nproc N script.py`
    dist.all_reduce(t, op=dist.ReduceOp.SUM)  # in place on every rank
    work = dist.all_reduce(t, async_op=True); ...; work.wait()

Backends: ``"mpi"`` (mpi4py; CPU tensors; ``pip install 'hubkit[distributed]'`` brings mpi4py and the
MPICH wheel with ``mpiexec``) and ``"nccl"`` (cupy's NCCL bindings; CUDA tensors, one GPU per process).
Every collective gives up with ``DistributedError`` after the group's ``timeout`` or as soon as the launcher
reports that another rank died, instead of hanging. ``hubkit.nn.parallel.DistributedDataParallel`` and
``hubkit.data.DistributedSampler`` build on this module.
"""

from hubkit.distributed._api import (
    GroupMember,
    ProcessGroup,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    destroy_process_group,
    get_backend,
    get_local_rank,
    get_node_local_rank,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    new_group,
    reduce_scatter,
    reduce_scatter_tensor,
)
from hubkit.distributed._pending import ReduceOp
from hubkit.errors import DistributedError

__all__ = [
    "DistributedError", "GroupMember", "ProcessGroup", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
    "all_gather_object", "all_reduce", "barrier", "broadcast", "broadcast_object_list", "destroy_process_group",
    "get_backend", "get_local_rank", "get_node_local_rank", "get_rank", "get_world_size", "group",
    "init_process_group", "is_available", "is_initialized", "is_mpi_available", "is_nccl_available", "new_group",
    "reduce_scatter", "reduce_scatter_tensor",
]
