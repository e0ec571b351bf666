"""cuDNN's graph (backend) API for one convolution: built once per geometry, then executed with a few calls.

cuDNN 9 runs its legacy convolution calls (``cudnnConvolutionForward`` ...) on top of this API and pays
for it on the host: about 50-180 us per call on an H200's host, which made a ResNet-18 training step
host-bound. Here the operation graph, the heuristics' choice and the finalized execution plan are kept
per geometry (as PyTorch's cudnn-frontend path keeps them), so a call is a variant pack (the device
pointers) and ``cudnnBackendExecute``.

The engine rules follow PyTorch's: engines that down-convert their inputs are skipped; with
``deterministic``, so are those with a non-deterministic note; for float32 without TF32, so are tensor-core
engines. Engines that compile at run time are tried last. Anything the API refuses makes :func:`build`
return None, and ``kernels/cudnn.py`` uses the legacy calls for that geometry instead.

Enumeration values are cuDNN's (``cudnn_graph.h``, stable across cuDNN 8.x and 9.x).
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

# cudnnBackendDescriptorType_t
ENGINE, ENGINECFG, ENGINEHEUR, EXECUTION_PLAN = 2, 3, 4, 5
CONVOLUTION, OP_FORWARD, OP_BACKWARD_FILTER, OP_BACKWARD_DATA = 1, 10, 11, 12
OPERATIONGRAPH, VARIANT_PACK, TENSOR = 15, 16, 17
# cudnnBackendAttributeType_t
T_HANDLE, T_DATA_TYPE, T_INT64, T_FLOAT, T_DOUBLE, T_VOID_PTR = 0, 1, 3, 4, 5, 6
T_CONVOLUTION_MODE, T_HEUR_MODE, T_NUMERICAL_NOTE, T_DESCRIPTOR, T_BEHAVIOR_NOTE = 7, 8, 11, 15, 19
# cudnnBackendAttributeName_t
CONV_COMP_TYPE, CONV_MODE, CONV_DILATIONS, CONV_STRIDES, CONV_POST_PAD, CONV_PRE_PAD, CONV_DIMS = range(100, 107)
HEUR_MODE, HEUR_GRAPH, HEUR_RESULTS = 200, 201, 202
CFG_ENGINE = 300
PLAN_HANDLE, PLAN_CONFIG, PLAN_WORKSPACE = 400, 401, 402
GRAPH_HANDLE, GRAPH_OPS = 800, 801
TENSOR_ALIGNMENT, TENSOR_DATA_TYPE, TENSOR_DIMS, TENSOR_STRIDES = 900, 901, 902, 903
TENSOR_UID = 906
PACK_UIDS, PACK_POINTERS, PACK_WORKSPACE = 1000, 1001, 1003
ENGINE_NUMERICAL_NOTE, ENGINE_BEHAVIOR_NOTE = 1303, 1305
# per operation: (alpha, beta, conv desc, then the three tensors' attributes, in the order x, w, y)
OPERATIONS = {
    "forward": (OP_FORWARD, 700, 701, 702, {"w": 703, "x": 704, "y": 705}),
    "data": (OP_BACKWARD_DATA, 706, 707, 708, {"w": 709, "x": 710, "y": 711}),
    "filter": (OP_BACKWARD_FILTER, 712, 713, 714, {"w": 715, "x": 716, "y": 717}),
}
NOTE_TENSOR_CORE, NOTE_DOWN_CONVERT, NOTE_NONDETERMINISTIC = 0, 1, 4
BEHAVIOR_RUNTIME_COMPILATION = 0
HEUR_INSTANT = 0
CROSS_CORRELATION = 1
UIDS = {"x": 120, "w": 119, "y": 121}  # ord("x"), ord("w"), ord("y")

PROTOTYPES: dict[str, tuple[Any, ...]] = {
    "cudnnBackendCreateDescriptor": (ctypes.c_int, ctypes.c_void_p),
    "cudnnBackendDestroyDescriptor": (ctypes.c_void_p,),
    "cudnnBackendFinalize": (ctypes.c_void_p,),
    "cudnnBackendSetAttribute": (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p),
    "cudnnBackendGetAttribute": (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p,
                                 ctypes.c_void_p),  # fmt: skip
    "cudnnBackendExecute": (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p),
}


class Refused(Exception):
    """A graph-API call returned an error status: this geometry goes to the legacy calls."""

    def __init__(self, step: str, status: int) -> None:
        super().__init__(f"{step}: status {status}")
        self.step, self.status = step, status


@dataclass
class Descriptors:
    """Every descriptor a plan was built from (cuDNN may refer to them while the plan lives)."""

    lib: Any
    made: list[int] = field(default_factory=list)

    def create(self, kind: int) -> int:
        desc = ctypes.c_void_p()
        self.call("create", "cudnnBackendCreateDescriptor", kind, ctypes.byref(desc))
        self.made.append(desc.value)
        return desc.value

    def call(self, step: str, name: str, *args: Any) -> None:
        status = self.lib.call(name, *args)
        if status:
            raise Refused(step, status)

    def set(self, desc: int, name: int, kind: int, values: list[Any], ctype: Any) -> None:
        array = (ctype * len(values))(*values)
        self.call(f"set {name}", "cudnnBackendSetAttribute", desc, name, kind, len(values), array)

    def finalize(self, desc: int, step: str) -> None:
        self.call(f"finalize {step}", "cudnnBackendFinalize", desc)

    def destroy(self) -> None:
        for desc in reversed(self.made):
            self.lib.call("cudnnBackendDestroyDescriptor", desc)
        self.made.clear()


PACKS_PER_PLAN = 32  # variant packs kept per plan: one per set of device pointers seen, the oldest go first


@dataclass
class GraphPlan:
    """A finalized execution plan and what a call needs: the workspace size and the tensors' ids.

    ``packs`` keeps the variant packs (the device pointers of one call) by their pointers: cupy's memory pool
    hands a layer the same addresses step after step, so a steady call is one ``cudnnBackendExecute``.
    """

    descriptors: Descriptors
    plan: int
    workspace: int
    engine_notes: tuple[int, ...]
    packs: OrderedDict = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def destroy(self) -> None:
        """Free the variant packs, the plan and every descriptor it was built from."""
        with self.lock:
            for pack in self.packs.values():
                self.descriptors.lib.call("cudnnBackendDestroyDescriptor", pack)
            self.packs.clear()
            self.descriptors.destroy()


def _tensor(d: Descriptors, uid: int, data_type: int, shape: tuple[int, ...], alignment: int) -> int:
    desc = d.create(TENSOR)
    strides = [1] * len(shape)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    d.set(desc, TENSOR_UID, T_INT64, [uid], ctypes.c_int64)
    d.set(desc, TENSOR_DATA_TYPE, T_DATA_TYPE, [data_type], ctypes.c_int)
    d.set(desc, TENSOR_ALIGNMENT, T_INT64, [alignment], ctypes.c_int64)
    d.set(desc, TENSOR_DIMS, T_INT64, list(shape), ctypes.c_int64)
    d.set(desc, TENSOR_STRIDES, T_INT64, strides, ctypes.c_int64)
    d.finalize(desc, "tensor")
    return desc


def operation(d: Descriptors, kind: str, data_type: int, compute_type: int, shapes: dict[str, tuple[int, ...]],
              stride: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]], dilation: tuple[int, int],
              alignment: int) -> int:  # fmt: skip
    """The finalized operation descriptor for one convolution (no GPU needed)."""
    tensors = {name: _tensor(d, UIDS[name], data_type, shape, alignment) for name, shape in shapes.items()}
    conv = d.create(CONVOLUTION)
    d.set(conv, CONV_COMP_TYPE, T_DATA_TYPE, [compute_type], ctypes.c_int)
    d.set(conv, CONV_MODE, T_CONVOLUTION_MODE, [CROSS_CORRELATION], ctypes.c_int)
    d.set(conv, CONV_DIMS, T_INT64, [2], ctypes.c_int64)
    d.set(conv, CONV_DILATIONS, T_INT64, list(dilation), ctypes.c_int64)
    d.set(conv, CONV_STRIDES, T_INT64, list(stride), ctypes.c_int64)
    d.set(conv, CONV_PRE_PAD, T_INT64, [pads[0][0], pads[1][0]], ctypes.c_int64)
    d.set(conv, CONV_POST_PAD, T_INT64, [pads[0][1], pads[1][1]], ctypes.c_int64)
    d.finalize(conv, "convolution")
    op_type, alpha, beta, conv_attr, tensor_attrs = OPERATIONS[kind]
    op = d.create(op_type)
    scalar_type, scalar = (T_DOUBLE, ctypes.c_double) if compute_type == 1 else (T_FLOAT, ctypes.c_float)
    d.set(op, alpha, scalar_type, [1.0], scalar)
    d.set(op, beta, scalar_type, [0.0], scalar)
    d.set(op, conv_attr, T_DESCRIPTOR, [conv], ctypes.c_void_p)
    for name, attr in tensor_attrs.items():
        d.set(op, attr, T_DESCRIPTOR, [tensors[name]], ctypes.c_void_p)
    d.finalize(op, f"{kind} operation")
    return op


def _notes(d: Descriptors, engine: int, attr: int, kind: int) -> tuple[int, ...]:
    notes = (ctypes.c_int * 16)()
    count = ctypes.c_int64()
    d.call("notes", "cudnnBackendGetAttribute", engine, attr, kind, 16, ctypes.byref(count), notes)
    return tuple(notes[: count.value])


def _configs(d: Descriptors, graph: int) -> list[int]:
    heur = d.create(ENGINEHEUR)
    d.set(heur, HEUR_GRAPH, T_DESCRIPTOR, [graph], ctypes.c_void_p)
    d.set(heur, HEUR_MODE, T_HEUR_MODE, [HEUR_INSTANT], ctypes.c_int)
    d.finalize(heur, "heuristics")
    count = ctypes.c_int64()
    d.call("count configs", "cudnnBackendGetAttribute", heur, HEUR_RESULTS, T_DESCRIPTOR, 0, ctypes.byref(count), None)
    configs = [d.create(ENGINECFG) for _ in range(count.value)]
    if not configs:
        return []
    array = (ctypes.c_void_p * len(configs))(*configs)
    got = ctypes.c_int64()
    d.call("get configs", "cudnnBackendGetAttribute", heur, HEUR_RESULTS, T_DESCRIPTOR, len(configs),
           ctypes.byref(got), array)  # fmt: skip
    return configs[: got.value]


def build(lib: Any, handle: Any, kind: str, data_type: int, compute_type: int, shapes: dict[str, tuple[int, ...]],
          stride: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]], dilation: tuple[int, int],
          alignment: int, float32: bool, tf32: bool, deterministic: bool) -> GraphPlan | None:  # fmt: skip
    """The execution plan cuDNN's heuristics rank first among the engines the rules allow, or None."""
    d = Descriptors(lib)
    try:
        op = operation(d, kind, data_type, compute_type, shapes, stride, pads, dilation, alignment)
        graph = d.create(OPERATIONGRAPH)
        d.set(graph, GRAPH_HANDLE, T_HANDLE, [handle.value], ctypes.c_void_p)
        d.set(graph, GRAPH_OPS, T_DESCRIPTOR, [op], ctypes.c_void_p)
        d.finalize(graph, "operation graph")
        allowed, compiled = [], []
        for config in _configs(d, graph):
            engine = d.create(ENGINE)
            count = ctypes.c_int64()
            d.call("engine", "cudnnBackendGetAttribute", config, CFG_ENGINE, T_DESCRIPTOR, 1, ctypes.byref(count),
                   (ctypes.c_void_p * 1)(engine))  # fmt: skip
            notes = _notes(d, engine, ENGINE_NUMERICAL_NOTE, T_NUMERICAL_NOTE)
            if NOTE_DOWN_CONVERT in notes or (deterministic and NOTE_NONDETERMINISTIC in notes):
                continue
            if float32 and not tf32 and NOTE_TENSOR_CORE in notes:
                continue
            behaviour = _notes(d, engine, ENGINE_BEHAVIOR_NOTE, T_BEHAVIOR_NOTE)
            (compiled if BEHAVIOR_RUNTIME_COMPILATION in behaviour else allowed).append((config, notes))
        for config, notes in allowed + compiled:
            plan = d.create(EXECUTION_PLAN)
            d.set(plan, PLAN_HANDLE, T_HANDLE, [handle.value], ctypes.c_void_p)
            d.set(plan, PLAN_CONFIG, T_DESCRIPTOR, [config], ctypes.c_void_p)
            if lib.call("cudnnBackendFinalize", plan):
                continue  # this engine cannot run here: the next one
            size = ctypes.c_int64()
            count = ctypes.c_int64()
            d.call("workspace", "cudnnBackendGetAttribute", plan, PLAN_WORKSPACE, T_INT64, 1, ctypes.byref(count),
                   ctypes.byref(size))  # fmt: skip
            return GraphPlan(d, plan, size.value, notes)
    except Refused:
        pass
    d.destroy()
    return None


_PACK_UIDS = (ctypes.c_int64 * 3)(UIDS["x"], UIDS["w"], UIDS["y"])


def _variant_pack(dll: Any, pointers: tuple[int, int, int], workspace: int | None) -> tuple[int, int]:
    """A finalized variant pack for the device pointers of (x, w, y) and the workspace: (pack, 0) or (0, status)."""
    pack = ctypes.c_void_p()
    status = dll.cudnnBackendCreateDescriptor(VARIANT_PACK, ctypes.byref(pack))
    if status:
        return 0, status
    ptrs = (ctypes.c_void_p * 3)(*pointers)
    status = (
        dll.cudnnBackendSetAttribute(pack, PACK_UIDS, T_INT64, 3, _PACK_UIDS)
        or dll.cudnnBackendSetAttribute(pack, PACK_POINTERS, T_VOID_PTR, 3, ptrs)
        or dll.cudnnBackendSetAttribute(pack, PACK_WORKSPACE, T_VOID_PTR, 1, (ctypes.c_void_p * 1)(workspace))
        or dll.cudnnBackendFinalize(pack)
    )
    if status:
        dll.cudnnBackendDestroyDescriptor(pack)
        return 0, status
    return pack.value, 0


def execute(lib: Any, handle: Any, plan: GraphPlan, pointers: tuple[int, int, int], workspace: int | None) -> int:
    """Run ``plan`` on the device pointers of (x, w, y); the status (0: queued on the handle's stream)."""
    dll = lib.dll
    key = (*pointers, workspace)
    with plan.lock:
        pack = plan.packs.get(key)
        if pack is None:
            pack, status = _variant_pack(dll, pointers, workspace)
            if status:
                return status
            plan.packs[key] = pack
            if len(plan.packs) > PACKS_PER_PLAN:
                dll.cudnnBackendDestroyDescriptor(plan.packs.popitem(last=False)[1])
        return dll.cudnnBackendExecute(handle, plan.plan, pack)
