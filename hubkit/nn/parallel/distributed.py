"""``DistributedDataParallel``: every rank trains a replica; backward leaves the same averaged gradient on each.

How it works, as in torch's DDP (docs/source/notes/ddp.md):

- At construction the ranks check that they hold the same model (names, shapes, dtypes) and rank 0's
  parameters and buffers are broadcast to the others.
- The parameters are packed, in reverse order (the order backward produces their gradients), into buckets
  of about ``bucket_cap_mb`` MiB (the first one 1 MiB, so communication starts early). A post-accumulate
  hook on each parameter copies its gradient into its bucket; when a bucket is full it is all-reduced
  asynchronously while backward goes on. Buckets are started in index order on every rank (MPI and NCCL
  need the same order everywhere). When the last one is started the hook waits for all of them and writes
  ``sum / world_size`` back into each ``.grad``.
- ``no_sync()``: a forward inside it makes the following backward accumulate locally; the first backward
  after a forward outside it averages the accumulated gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import _node_of, is_grad_enabled, no_grad
from hubkit.distributed import _api as dist
from hubkit.distributed._pending import ReduceOp
from hubkit.errors import ArgumentError, DistributedError
from hubkit.nn.module import Module
from hubkit.tensor import Tensor

_MIB = 1024 * 1024
# torch's reducer.hpp: kDefaultFirstBucketBytes; the first bucket is small so its all-reduce starts early
_FIRST_BUCKET_BYTES = 1 * _MIB
# module states are broadcast at construction in flat pieces of at most this size (torch uses 250 MiB too)
_BROADCAST_BYTES = 250 * _MIB


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer."""

    def __init__(self, indices: list[int], params: list[Tensor]) -> None:
        self.indices = indices
        first = params[indices[0]].array
        xp = get_array_module(first)
        sizes = [params[i].array.size for i in indices]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.flat = Tensor._make(xp.zeros(self.offsets[-1], dtype=first.dtype))
        self.ready = 0
        self.work: dist.Work | None = None

    def view(self, k: int) -> Any:
        return self.flat.array[self.offsets[k]: self.offsets[k + 1]]


class DistributedDataParallel(Module):
    """Data-parallel training of ``module`` over the ranks of ``process_group`` (default: the world).

    Call it like the module; ``loss.backward()`` then leaves every rank with the gradient averaged over
    the ranks. ``state_dict()`` keys carry the ``module.`` prefix (as torch writes them);
    ``load_state_dict`` accepts either form. ``find_unused_parameters=True`` lets a forward leave some
    parameters out of the loss; ``broadcast_buffers`` re-sends rank 0's buffers (BatchNorm statistics)
    before each forward. ``device_ids``/``output_device``/``dim`` are accepted as torch's: a CUDA module
    stays on its one device; ``static_graph`` and ``gradient_as_bucket_view`` change nothing here (hubkit's
    reducer needs neither hint, and gradients are copied back from the buckets).
    """

    def __init__(self, module: Module, device_ids: list[Any] | None = None, output_device: Any = None,
                 dim: int = 0, broadcast_buffers: bool = True, init_sync: bool = True,
                 process_group: dist.ProcessGroup | None = None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise ArgumentError(f"DistributedDataParallel wraps an nn.Module, got {type(module).__name__}")
        if device_ids is not None and len(device_ids) != 1:
            raise ArgumentError(f"device_ids={device_ids}: DistributedDataParallel drives one device per process; "
                                "pass None or a single device")
        self.module = module
        pg = dist._resolve(process_group)
        self.__dict__.update(
            process_group=pg, broadcast_buffers=broadcast_buffers, find_unused_parameters=find_unused_parameters,
            bucket_bytes_cap=int((25 if bucket_cap_mb is None else bucket_cap_mb) * _MIB), dim=dim,
            device_ids=device_ids, output_device=output_device, static_graph=static_graph,
            gradient_as_bucket_view=gradient_as_bucket_view, require_backward_grad_sync=True)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise ArgumentError("DistributedDataParallel is not needed when a module doesn't have any parameter that "
                                "requires a gradient")
        self.__dict__["_names"] = [n for n, _ in named]
        self.__dict__["_params"] = [p for _, p in named]
        self._check_devices(pg)
        if init_sync:
            self._verify_same_model(pg)
            self._broadcast_states(pg)
        self.__dict__["_buckets"] = self._make_buckets()
        self.__dict__["_slot"] = {i: (b, k) for b, bucket in enumerate(self._buckets)
                                  for k, i in enumerate(bucket.indices)}
        self.__dict__["_hook_handles"] = [p.register_post_accumulate_grad_hook(self._hook(i))
                                          for i, p in enumerate(self._params)]
        self._reset_iteration(expect=False)

    # ------------------------------------------------------------ construction
    def _check_devices(self, pg: dist.ProcessGroup) -> None:
        cuda = {type(p.array).__module__.startswith("cupy") for p in self._params}
        if len(cuda) > 1:
            raise ArgumentError("DistributedDataParallel: the module has parameters on both the CPU and a GPU; "
                                "move it to one device first")
        on_gpu = cuda.pop()
        if on_gpu != (pg.name() == "nccl"):
            raise ArgumentError(f"DistributedDataParallel: the module is on {'a GPU' if on_gpu else 'the CPU'} but "
                                f"the process group's backend is {pg.name()!r}; use backend="
                                f"{'nccl' if on_gpu else 'mpi'!r} or move the module")

    def _states(self) -> list[tuple[str, Tensor]]:
        return list(self.module.named_parameters()) + [
            (n, b) for n, b in self.module.named_buffers() if b is not None]

    def _verify_same_model(self, pg: dist.ProcessGroup) -> None:
        mine = [(n, tuple(t.shape), str(t.array.dtype)) for n, t in self._states()]
        everyone: list[Any] = [None] * pg.size()
        dist.all_gather_object(everyone, mine, group=pg)
        reference = everyone[0]
        for r, theirs in enumerate(everyone[1:], start=1):
            if theirs == reference:
                continue
            raise DistributedError("DistributedDataParallel: the model differs across ranks: "
                                   f"{_first_difference(reference, theirs, pg.ranks[r])}. Every rank must build "
                                   "the same model (same architecture and arguments) before wrapping it")

    def _broadcast_states(self, pg: dist.ProcessGroup) -> None:
        """Overwrite every rank's parameters and buffers with rank 0's, in flat pieces per dtype."""
        if pg.size() == 1:
            return
        tensors = [t for _, t in self._states()]
        by_dtype: dict[Any, list[Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.array.dtype, []).append(t)
        with no_grad():
            for group in by_dtype.values():
                for piece in _pieces(group, _BROADCAST_BYTES):
                    xp = get_array_module(piece[0].array)
                    flat = Tensor._make(xp.concatenate([t.array.ravel() for t in piece]))
                    dist.broadcast(flat, src=pg.ranks[0], group=pg)
                    offset = 0
                    for t in piece:
                        t.array[...] = flat.array[offset: offset + t.array.size].reshape(t.array.shape)
                        offset += t.array.size

    def _make_buckets(self) -> list[_Bucket]:
        """Parameter indices in reverse order, cut into buckets by dtype and size (torch's assignment)."""
        buckets: list[_Bucket] = []
        open_: dict[Any, tuple[list[int], int]] = {}
        cap = min(_FIRST_BUCKET_BYTES, self.bucket_bytes_cap)
        for i in reversed(range(len(self._params))):
            array = self._params[i].array
            indices, nbytes = open_.get(array.dtype, ([], 0))
            indices.append(i)
            nbytes += array.nbytes
            if nbytes >= cap:
                buckets.append(_Bucket(indices, self._params))
                open_.pop(array.dtype, None)
                cap = self.bucket_bytes_cap
            else:
                open_[array.dtype] = (indices, nbytes)
        buckets += [_Bucket(indices, self._params) for indices, _ in open_.values()]
        return buckets

    # ------------------------------------------------------------ forward
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        self._pre_forward()
        output = self.module(*inputs, **kwargs)
        self._post_forward(output)
        return output

    def _pre_forward(self) -> None:
        """Check the previous iteration finished its reduction; re-send rank 0's buffers."""
        if self._expect_hooks and self._marked:
            unready = [self._names[i] for i in range(len(self._params)) if i not in self._marked]
            raise DistributedError(
                "Expected to have finished reduction in the prior iteration before starting a new one. This error "
                "indicates that your module has parameters that were not used in producing loss: "
                f"{unready[:10]}{' ...' if len(unready) > 10 else ''}. Pass find_unused_parameters=True to "
                "DistributedDataParallel, or make sure every forward output takes part in the loss")
        pg = self.process_group
        if self.broadcast_buffers and pg.size() > 1:
            buffers = [b for _, b in self.module.named_buffers() if b is not None]
            if buffers:
                with no_grad():
                    for piece in _pieces(buffers, _BROADCAST_BYTES, by_dtype=True):
                        xp = get_array_module(piece[0].array)
                        flat = Tensor._make(xp.concatenate([b.array.ravel() for b in piece]))
                        dist.broadcast(flat, src=pg.ranks[0], group=pg)
                        offset = 0
                        for b in piece:
                            b.array[...] = flat.array[offset: offset + b.array.size].reshape(b.array.shape)
                            offset += b.array.size

    def _post_forward(self, output: Any) -> None:
        """Arm the gradient hooks for the backward of ``output`` (unless under no_sync or no_grad)."""
        expect = is_grad_enabled() and self.require_backward_grad_sync
        self._reset_iteration(expect)
        if expect and self.find_unused_parameters:
            used = _reachable_leaves(output)
            local_used = np.array([id(p) in used for p in self._params], dtype=np.int32)
            xp = get_array_module(self._params[0].array)
            self.__dict__["_used"] = Tensor._make(xp.asarray(local_used))
            self.__dict__["_used_work"] = dist.all_reduce(self._used, op=ReduceOp.MAX, group=self.process_group,
                                                          async_op=True)
            self.__dict__["_locally_unused"] = [i for i, u in enumerate(local_used) if not u]
            for i in self._locally_unused:  # an unused parameter sends what it has accumulated (or zeros)
                grad = self._params[i].grad
                self._mark_ready(i, None if grad is None else grad.array)

    def _reset_iteration(self, expect: bool) -> None:
        for bucket in self._buckets:
            bucket.ready = 0
            bucket.work = None
        self.__dict__.update(_expect_hooks=expect, _marked=set(), _next_bucket=0, _used=None, _used_work=None,
                             _locally_unused=[])

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forwards inside this block are followed by backwards that only accumulate, without communicating."""
        previous = self.require_backward_grad_sync
        self.__dict__["require_backward_grad_sync"] = False
        try:
            yield
        finally:
            self.__dict__["require_backward_grad_sync"] = previous

    # ------------------------------------------------------------ backward
    def _hook(self, index: int) -> Any:
        def on_grad_ready(param: Tensor) -> None:
            if self._expect_hooks:
                self._mark_ready(index, param.grad.array)

        return on_grad_ready

    def _mark_ready(self, index: int, grad: Any) -> None:
        if index in self._marked:
            raise DistributedError(
                f"Expected to mark a variable ready only once: parameter {self._names[index]!r} got a second "
                "gradient in one iteration (a backward ran twice through the same forward, or the parameter is "
                "used in a reentrant backward). Run one backward per DistributedDataParallel forward")
        self._marked.add(index)
        b, k = self._slot[index]
        bucket = self._buckets[b]
        view = bucket.view(k)
        if grad is None:
            view[...] = 0
        else:
            view[...] = grad.reshape(-1)
        bucket.ready += 1
        while self._next_bucket < len(self._buckets):
            nxt = self._buckets[self._next_bucket]
            if nxt.ready < len(nxt.indices):
                break
            nxt.work = dist.all_reduce(nxt.flat, op=ReduceOp.SUM, group=self.process_group, async_op=True)
            self.__dict__["_next_bucket"] = self._next_bucket + 1
        for started in self._buckets[: self._next_bucket]:
            started.work.is_completed()  # lets MPI progress the transfers already started
        if self._next_bucket == len(self._buckets):
            self._finalize()

    def _finalize(self) -> None:
        """Wait for every bucket and write the averaged gradients into ``.grad``."""
        size = self.process_group.size()
        globally_used = None
        if self._used_work is not None:
            self._used_work.wait()
            globally_used = self._used.array
        with no_grad():
            for bucket in self._buckets:
                bucket.work.wait()
                flat = bucket.flat.array
                flat /= flat.dtype.type(size)
                for k, i in enumerate(bucket.indices):
                    p = self._params[i]
                    if i in self._locally_unused and p.grad is None:
                        if globally_used is not None and int(globally_used[i]):
                            p.grad = Tensor._make(bucket.view(k).reshape(p.array.shape).copy())
                        continue
                    p.grad.array[...] = bucket.view(k).reshape(p.array.shape)
        self._reset_iteration(expect=False)

    # ------------------------------------------------------------ state
    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load keys with the ``module.`` prefix (as ``state_dict()`` writes them) or without it (the bare
        module's own keys)."""
        if state_dict and not any(str(k).startswith("module.") for k in state_dict):
            return self.module.load_state_dict(state_dict, strict=strict, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return ""


def _pieces(tensors: list[Tensor], max_bytes: int, by_dtype: bool = False) -> Iterator[list[Tensor]]:
    """Consecutive runs of ``tensors`` of at most ``max_bytes`` (one dtype per run when ``by_dtype``)."""
    piece: list[Tensor] = []
    size = 0
    for t in tensors:
        if piece and (size + t.array.nbytes > max_bytes or (by_dtype and t.array.dtype != piece[0].array.dtype)):
            yield piece
            piece, size = [], 0
        piece.append(t)
        size += t.array.nbytes
    if piece:
        yield piece


def _first_difference(reference: list[tuple], theirs: list[tuple], rank: int) -> str:
    ref_names = {n: (s, d) for n, s, d in reference}
    their_names = {n: (s, d) for n, s, d in theirs}
    for name, (shape, dtype) in ref_names.items():
        if name not in their_names:
            return f"rank 0 has {name!r} (shape {shape}) and rank {rank} does not"
        other_shape, other_dtype = their_names[name]
        if other_shape != shape:
            return f"{name!r} has shape {shape} on rank 0 but {other_shape} on rank {rank}"
        if other_dtype != dtype:
            return f"{name!r} is {dtype} on rank 0 but {other_dtype} on rank {rank}"
    extra = [n for n in their_names if n not in ref_names]
    if extra:
        return f"rank {rank} has {extra[0]!r}, which rank 0 does not"
    return f"rank {rank} lists the same parameters and buffers in a different order than rank 0"


def _reachable_leaves(output: Any) -> set[int]:
    """ids of the leaf tensors the autograd graph of ``output`` (Tensors in any nesting) reaches."""
    leaves: set[int] = set()
    stack = []
    for t in _tensors_in(output):
        node = _node_of(t)
        if node is None:
            leaves.add(id(t))
        else:
            stack.append(node[0])
    seen: set[int] = set()
    while stack:
        fn = stack.pop()
        if id(fn) in seen or fn.inputs is None:
            continue
        seen.add(id(fn))
        for x, parent in zip(fn.inputs, fn.parents):
            if parent is not None:
                stack.append(parent[0])
            elif isinstance(x, Tensor) and x.requires_grad:
                leaves.add(id(x))
    return leaves


def _tensors_in(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors_in(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _tensors_in(v)
