"""cuDNN convolutions and batch norms for cupy arrays, through ctypes.

cupy 14 dropped its cuDNN bindings, but NVIDIA ships cuDNN itself as wheels (``nvidia-cudnn-cu12``,
``nvidia-cudnn-cu13``; hubkit's ``cuda12``/``cuda13`` extras and PyTorch's CUDA builds install one). When one
built for the CUDA major version cupy runs on is installed, ``kernels/cuda.py`` runs 2-d convolutions (forward,
input gradient, weight gradient, and the transposed convolution through those) and 4-d batch norms here, with
PyTorch's settings:

- ``hubkit.backends.cudnn.allow_tf32`` (default True, as in torch): float32 convolutions may use TF32 tensor
  cores, about 1e-3 relative error; False keeps them in FP32. Matrix products are not affected:
  ``hubkit.backends.cuda.matmul.allow_tf32`` stays False, as torch's does.
- ``deterministic``: only algorithms cuDNN reports as deterministic (the weight gradient's fastest ones sum
  with atomics); ``hubkit.use_deterministic_algorithms(True)`` asks for the same.
- ``benchmark``: time every algorithm on the first call of each geometry (``cudnnFind*``) instead of taking
  cuDNN's heuristic choice; ``enabled = False``: hubkit's own kernels.

A convolution runs on an execution plan of cuDNN's graph API (``cudnn_graph.py``), built once per call kind
and geometry; the legacy calls (``cudnnConvolutionForward`` ...) serve ``benchmark`` and whatever the graph
API refuses. Where cuDNN cannot run a convolution at all (asymmetric padding, a dtype it lacks, no algorithm
within the rules above) the functions here return None and the caller runs the im2col path; an error while
a legacy call runs raises :class:`CudnnError`. Plans and descriptors are kept (up to :data:`_PLAN_CACHE_SIZE`
of each), so a call costs a few ctypes calls on the host.

The library is looked up in ``HUBKIT_CUDNN_LIBRARY`` (a path), then in the ``nvidia.cudnn`` package, then on
the loader's path. Nothing here imports cupy until a convolution runs, so the lookup, the descriptors and
the error paths are tested on machines without a GPU (tests/kernels/test_cudnn.py, test_cudnn_dispatch.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from hubkit import _config
from hubkit.backends import cudnn as flags
from hubkit.errors import DeviceError
from hubkit.kernels import cudnn_graph
from hubkit.kernels.shapes import conv_out_size

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]

_PLAN_CACHE_SIZE = 512
_MIN_VERSION = 8000  # the *_v7 heuristics and group counts; cuDNN 9 keeps this API

# cudnnDataType_t for the dtypes cuDNN convolves, and the compute type torch pairs with each
_DATA_TYPES = {"f": 0, "d": 1, "e": 2}  # float32, float64, float16
_COMPUTE_TYPES = {"f": 0, "d": 1, "e": 0}
_NCHW = 0
_CROSS_CORRELATION = 1
_DEFAULT_MATH, _TENSOR_OP_MATH, _TENSOR_OP_MATH_ALLOW_CONVERSION, _FMA_MATH = 0, 1, 2, 3
_DETERMINISTIC = 1
_ALGO_COUNTS = {"forward": 8, "data": 6, "filter": 7}


class CudnnError(DeviceError):
    """A cuDNN call failed: the status cuDNN gave, the call, and what to do."""


def _not_supported(status: int) -> bool:
    """cuDNN 8's BAD_PARAM (3) / NOT_SUPPORTED (9), and cuDNN 9's 2000 and 3000 families."""
    return status in (3, 9) or status // 1000 in (2, 3)


class _Perf(ctypes.Structure):
    """cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (the three share this layout)."""

    _fields_ = [
        ("algo", ctypes.c_int),
        ("status", ctypes.c_int),
        ("time", ctypes.c_float),
        ("memory", ctypes.c_size_t),
        ("determinism", ctypes.c_int),
        ("mathType", ctypes.c_int),
        ("reserved", ctypes.c_int * 3),
    ]


_P, _I, _S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
_PROTOTYPES: dict[str, tuple[Any, ...]] = {
    "cudnnCreate": (_P,),
    "cudnnSetStream": (_P, _P),
    "cudnnCreateTensorDescriptor": (_P,),
    "cudnnSetTensor4dDescriptor": (_P, _I, _I, _I, _I, _I, _I),
    "cudnnDestroyTensorDescriptor": (_P,),
    "cudnnCreateFilterDescriptor": (_P,),
    "cudnnSetFilter4dDescriptor": (_P, _I, _I, _I, _I, _I, _I),
    "cudnnDestroyFilterDescriptor": (_P,),
    "cudnnCreateConvolutionDescriptor": (_P,),
    "cudnnSetConvolution2dDescriptor": (_P, _I, _I, _I, _I, _I, _I, _I, _I),
    "cudnnSetConvolutionGroupCount": (_P, _I),
    "cudnnSetConvolutionMathType": (_P, _I),
    "cudnnDestroyConvolutionDescriptor": (_P,),
    "cudnnGetConvolution2dForwardOutputDim": (_P, _P, _P, _P, _P, _P, _P),
    "cudnnGetConvolutionForwardAlgorithm_v7": (_P, _P, _P, _P, _P, _I, _P, _P),
    "cudnnFindConvolutionForwardAlgorithm": (_P, _P, _P, _P, _P, _I, _P, _P),
    "cudnnGetConvolutionForwardWorkspaceSize": (_P, _P, _P, _P, _P, _I, _P),
    "cudnnConvolutionForward": (_P, _P, _P, _P, _P, _P, _P, _I, _P, _S, _P, _P, _P),
    "cudnnGetConvolutionBackwardDataAlgorithm_v7": (_P, _P, _P, _P, _P, _I, _P, _P),
    "cudnnFindConvolutionBackwardDataAlgorithm": (_P, _P, _P, _P, _P, _I, _P, _P),
    "cudnnGetConvolutionBackwardDataWorkspaceSize": (_P, _P, _P, _P, _P, _I, _P),
    "cudnnConvolutionBackwardData": (_P, _P, _P, _P, _P, _P, _P, _I, _P, _S, _P, _P, _P),
    "cudnnGetConvolutionBackwardFilterAlgorithm_v7": (_P, _P, _P, _P, _P, _I, _P, _P),
    "cudnnFindConvolutionBackwardFilterAlgorithm": (_P, _P, _P, _P, _P, _I, _P, _P),
    "cudnnGetConvolutionBackwardFilterWorkspaceSize": (_P, _P, _P, _P, _P, _I, _P),
    "cudnnConvolutionBackwardFilter": (_P, _P, _P, _P, _P, _P, _P, _I, _P, _S, _P, _P, _P),
}


class _Library:
    """The loaded libcudnn with typed entry points; every call goes through :meth:`check`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dll = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        self.dll.cudnnGetVersion.restype = ctypes.c_size_t
        self.dll.cudnnGetVersion.argtypes = ()
        self.dll.cudnnGetCudartVersion.restype = ctypes.c_size_t
        self.dll.cudnnGetCudartVersion.argtypes = ()
        self.dll.cudnnGetErrorString.restype = ctypes.c_char_p
        self.dll.cudnnGetErrorString.argtypes = (ctypes.c_int,)
        self.version = int(self.dll.cudnnGetVersion())
        self.cudart_version = int(self.dll.cudnnGetCudartVersion())
        # the batch-norm calls are deprecated in cuDNN 9: a build without them keeps hubkit's own batch norm
        self.has_batch_norm = all(hasattr(self.dll, name) for name in _BN_PROTOTYPES)
        prototypes = {**_PROTOTYPES, **cudnn_graph.PROTOTYPES, **(_BN_PROTOTYPES if self.has_batch_norm else {})}
        for name, argtypes in prototypes.items():
            fn = getattr(self.dll, name)
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int

    def status_text(self, status: int) -> str:
        return self.dll.cudnnGetErrorString(status).decode(errors="replace")

    def check(self, name: str, *args: Any) -> None:
        status = getattr(self.dll, name)(*args)
        if status:
            raise CudnnError(
                f"{name} failed with {self.status_text(status)} ({status}), cuDNN {self.version} at {self.path}; "
                "set hubkit.backends.cudnn.enabled = False to run hubkit's own convolution kernels instead"
            )

    def call(self, name: str, *args: Any) -> int:
        """The raw status, for calls whose failure means 'not for this geometry'."""
        return int(getattr(self.dll, name)(*args))


def _candidates() -> list[str]:
    """Where libcudnn may be, in the order tried."""
    explicit = os.environ.get("HUBKIT_CUDNN_LIBRARY")
    if explicit:
        return [explicit]
    found = []
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        found += sorted(glob.glob(os.path.join(root, "cudnn", "lib", "libcudnn.so.*")))
    system = ctypes.util.find_library("cudnn")
    if system:
        found.append(system)
    return found


_lock = threading.Lock()
_library: _Library | None = None
_unavailable: str | None = None
_searched = False


def library() -> _Library | None:
    """The loaded cuDNN, or None (then :func:`unavailable_reason` says why). Loaded once per process."""
    global _library, _unavailable, _searched
    if _searched:
        return _library
    with _lock:
        if _searched:
            return _library
        paths = _candidates()
        errors = []
        for path in paths:
            try:
                lib = _Library(path)
            except (OSError, AttributeError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            if lib.version < _MIN_VERSION:
                errors.append(f"{path}: cuDNN {lib.version} is older than {_MIN_VERSION}")
                continue
            _library = lib
            break
        if _library is None:
            _unavailable = (
                "; ".join(errors) if errors else
                "no libcudnn found (pip install nvidia-cudnn-cu12 or nvidia-cudnn-cu13, matching your cupy)"
            )  # fmt: skip
        _searched = True
    return _library


def unavailable_reason() -> str | None:
    """Why cuDNN is not used, or None when it is loaded."""
    library()
    return _unavailable


def _reset_for_tests() -> None:
    global _library, _unavailable, _searched, _checked_runtime
    with _lock:
        _library, _unavailable, _searched, _checked_runtime = None, None, False, None
        _plans.clear()
        _graphs.clear()
        _handles.clear()
        _workspaces.clear()
        _bn_descriptors.clear()
        _bn_constants.clear()
        graph_refusals.clear()


# ---------------------------------------------------------------- descriptors and plans


@dataclass
class _Algo:
    algo: int
    math: int
    workspace: int


@dataclass
class _Plan:
    """Descriptors for one convolution geometry, and the algorithms chosen for it (None: not chosen yet;
    False: cuDNN has none within the rules, use the im2col path)."""

    x: ctypes.c_void_p
    w: ctypes.c_void_p
    y: ctypes.c_void_p
    conv: ctypes.c_void_p
    y_shape: tuple[int, int, int, int]
    math: int
    algos: dict[str, _Algo | bool] = field(default_factory=dict)
    math_set: int = -1  # the math type the convolution descriptor holds now

    def set_math(self, lib: _Library, math: int) -> None:
        if self.math_set != math:
            lib.check("cudnnSetConvolutionMathType", self.conv, math)
            self.math_set = math

    def destroy(self, lib: _Library) -> None:
        lib.call("cudnnDestroyTensorDescriptor", self.x)
        lib.call("cudnnDestroyTensorDescriptor", self.y)
        lib.call("cudnnDestroyFilterDescriptor", self.w)
        lib.call("cudnnDestroyConvolutionDescriptor", self.conv)


_plans: OrderedDict[tuple, _Plan | None] = OrderedDict()  # legacy descriptors per geometry
_graphs: OrderedDict[tuple, Any] = OrderedDict()  # graph-API plans per call kind and geometry (False: refused)
graph_refusals: list[str] = []  # geometries whose graph plan cuDNN refused at run time (the legacy calls run them)
_handles: dict[int, list[Any]] = {}  # device -> [handle, the stream it is bound to]
_workspaces: dict[tuple[int, int], Any] = {}  # (device, stream) -> the cuDNN scratch buffer


def _new(lib: _Library, kind: str) -> ctypes.c_void_p:
    desc = ctypes.c_void_p()
    lib.check(f"cudnnCreate{kind}Descriptor", ctypes.byref(desc))
    return desc


def make_plan(lib: _Library, dtype_char: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair,
              pads: Pads, dilation: Pair, groups: int, tf32: bool) -> _Plan | None:  # fmt: skip
    """Descriptors for ``x`` (N, C, H, W) convolved with ``w`` (OC, C/groups, KH, KW); None when cuDNN cannot
    describe it (asymmetric padding, an unsupported dtype or geometry)."""
    (pt, pb), (pl, pr) = pads
    if pt != pb or pl != pr or dtype_char not in _DATA_TYPES:
        return None
    dtype = _DATA_TYPES[dtype_char]
    x, w, y, conv = (_new(lib, "Tensor"), _new(lib, "Filter"), _new(lib, "Tensor"), _new(lib, "Convolution"))
    if dtype_char == "e":
        math = _TENSOR_OP_MATH
    elif dtype_char == "f" and not tf32:
        math = _FMA_MATH
    else:
        math = _DEFAULT_MATH
    dims = (ctypes.c_int * 4)()
    statuses = (
        lib.call("cudnnSetTensor4dDescriptor", x, _NCHW, dtype, *x_shape),
        lib.call("cudnnSetFilter4dDescriptor", w, dtype, _NCHW, *w_shape),
        lib.call("cudnnSetConvolution2dDescriptor", conv, pt, pl, *stride, *dilation, _CROSS_CORRELATION,
                 _COMPUTE_TYPES[dtype_char]),  # fmt: skip
        lib.call("cudnnSetConvolutionGroupCount", conv, groups),
        lib.call("cudnnSetConvolutionMathType", conv, math),
        lib.call("cudnnGetConvolution2dForwardOutputDim", conv, x, w, *(ctypes.byref(dims, 4 * i) for i in range(4))),
    )
    plan = _Plan(x, w, y, conv, tuple(dims), math)
    bad = next((s for s in statuses if s), 0)
    if not bad and min(plan.y_shape) > 0:
        bad = lib.call("cudnnSetTensor4dDescriptor", y, _NCHW, dtype, *plan.y_shape)
    if bad or min(plan.y_shape) <= 0:
        plan.destroy(lib)
        if bad and not _not_supported(bad):
            raise CudnnError(f"cuDNN could not describe a convolution of {x_shape} with {w_shape}: "
                             f"{lib.status_text(bad)} ({bad})")  # fmt: skip
        return None
    return plan


def _flags() -> tuple[bool, bool, bool, bool]:
    deterministic = bool(flags.deterministic) or _config.are_deterministic_algorithms_enabled()
    return bool(flags.enabled), bool(flags.allow_tf32), deterministic, bool(flags.benchmark)


def choose(lib: _Library, handle: Any, plan: _Plan, kind: str, deterministic: bool, benchmark: bool) -> _Algo | None:
    """The algorithm for ``kind`` ("forward", "data" or "filter") under the flags: cuDNN's heuristic order
    (or measured order with ``benchmark``), skipping failures, non-deterministic algorithms when asked, and
    tensor-core math when TF32 is off."""
    count = _ALGO_COUNTS[kind]
    perf = (_Perf * count)()
    returned = ctypes.c_int()
    suffix = {"forward": "Forward", "data": "BackwardData", "filter": "BackwardFilter"}[kind]
    name = f"cudnnFindConvolution{suffix}Algorithm" if benchmark else f"cudnnGetConvolution{suffix}Algorithm_v7"
    if kind == "forward":
        descs = (plan.x, plan.w, plan.conv, plan.y)
    elif kind == "data":
        descs = (plan.w, plan.y, plan.conv, plan.x)
    else:
        descs = (plan.x, plan.y, plan.conv, plan.w)
    status = lib.call(name, handle, *descs, count, ctypes.byref(returned), perf)
    if status:
        if _not_supported(status):
            return None
        raise CudnnError(f"{name} failed with {lib.status_text(status)} ({status}); set "
                         "hubkit.backends.cudnn.enabled = False to run hubkit's own convolution kernels")  # fmt: skip
    for p in perf[: returned.value]:
        if p.status != 0 or (deterministic and p.determinism != _DETERMINISTIC):
            continue
        if plan.math == _FMA_MATH and p.mathType != _FMA_MATH:
            continue  # TF32 is off: no tensor-core algorithm for float32
        size = ctypes.c_size_t()
        plan.math_set = -1
        if lib.call("cudnnSetConvolutionMathType", plan.conv, p.mathType):
            continue
        plan.math_set = p.mathType
        if lib.call(f"cudnnGetConvolution{suffix}WorkspaceSize", handle, *descs, p.algo, ctypes.byref(size)):
            continue
        return _Algo(p.algo, p.mathType, size.value)
    return None


def _handle(lib: _Library, cp: Any, device: int) -> Any:
    """The device's cuDNN handle, bound to cupy's current stream (re-bound only when that changes)."""
    entry = _handles.get(device)
    if entry is None:
        handle = ctypes.c_void_p()
        lib.check("cudnnCreate", ctypes.byref(handle))
        entry = _handles[device] = [handle, None]
    stream = cp.cuda.get_current_stream().ptr
    if entry[1] != stream:
        lib.check("cudnnSetStream", entry[0], stream)
        entry[1] = stream
    return entry[0]


def _workspace(cp: Any, device: int, size: int) -> Any:
    """Scratch memory of at least ``size`` bytes for a cuDNN call on the current stream, kept between calls (one
    allocation less per convolution, and a steady pointer for the variant packs): calls queued on one stream
    run in order, so they can share it. It grows to the largest size asked for, as torch's cached one does."""
    key = (device, cp.cuda.get_current_stream().ptr)
    buffer = _workspaces.get(key)
    if buffer is None or buffer.size < size:
        buffer = _workspaces[key] = cp.empty(size, dtype=cp.uint8)
    return buffer


def _compatible(lib: _Library, cp: Any) -> bool:
    """cuDNN built for another CUDA major version than cupy's runtime must not be mixed into the process."""
    global _unavailable
    runtime = cp.cuda.runtime.runtimeGetVersion()
    if runtime // 1000 != lib.cudart_version // 1000:
        _unavailable = (f"{lib.path} is built for CUDA {lib.cudart_version // 1000}, cupy runs on CUDA "
                        f"{runtime // 1000}: install the nvidia-cudnn wheel for CUDA {runtime // 1000}")  # fmt: skip
        return False
    return True


_checked_runtime: bool | None = None


def _ready(cp: Any, dtype_char: str) -> tuple[_Library, bool, bool, bool] | None:
    """The library and (tf32, deterministic, benchmark) when cuDNN should run this dtype; else None."""
    global _checked_runtime
    enabled, tf32, deterministic, benchmark = _flags()
    if not enabled or dtype_char not in _DATA_TYPES:
        return None
    lib = library()
    if lib is None:
        return None
    if _checked_runtime is None:
        _checked_runtime = _compatible(lib, cp)
    if not _checked_runtime:
        return None
    return lib, tf32, deterministic, benchmark


def _plan_for(lib, cp, kind, dtype_char, x_shape, w_shape, stride, pads, dilation, groups, tf32, deterministic,
              benchmark) -> tuple[Any, _Plan, _Algo] | None:  # fmt: skip
    device = cp.cuda.Device().id
    key = (device, dtype_char, x_shape, w_shape, stride, pads, dilation, groups, tf32, deterministic, benchmark)
    handle = _handle(lib, cp, device)
    with _lock:
        if key in _plans:
            plan = _plans[key]
            _plans.move_to_end(key)
        else:
            plan = make_plan(lib, dtype_char, x_shape, w_shape, stride, pads, dilation, groups, tf32)
            _plans[key] = plan
            while len(_plans) > _PLAN_CACHE_SIZE:
                _, old = _plans.popitem(last=False)
                if old is not None:
                    old.destroy(lib)
        if plan is None:
            return None
        algo = plan.algos.get(kind)
        if algo is None:
            algo = choose(lib, handle, plan, kind, deterministic, benchmark) or False
            plan.algos[kind] = algo
    if algo is False:
        return None
    return handle, plan, algo


def _run(lib: _Library, cp: Any, name: str, handle: Any, plan: _Plan, algo: _Algo, dtype_char: str,
         operands: tuple[Any, ...]) -> None:  # fmt: skip
    one, zero = _units(dtype_char)
    workspace = _workspace(cp, cp.cuda.Device().id, algo.workspace) if algo.workspace else None
    plan.set_math(lib, algo.math)
    (a_desc, a), (b_desc, b), (out_desc, out) = operands
    lib.check(name, handle, one, a_desc, a.data.ptr, b_desc, b.data.ptr, plan.conv, algo.algo,
              workspace.data.ptr if workspace is not None else None, algo.workspace, zero,
              out_desc, out.data.ptr)  # fmt: skip


_ONE_F, _ZERO_F = ctypes.c_float(1.0), ctypes.c_float(0.0)
_ONE_D, _ZERO_D = ctypes.c_double(1.0), ctypes.c_double(0.0)
_UNITS = {"d": (ctypes.addressof(_ONE_D), ctypes.addressof(_ZERO_D))}
_UNITS_FLOAT = (ctypes.addressof(_ONE_F), ctypes.addressof(_ZERO_F))


def _units(dtype_char: str) -> tuple[int, int]:
    """Addresses of 1 and 0 in the type cuDNN scales ``dtype_char`` data with (double for float64, else float):
    its alpha and beta."""
    return _UNITS.get(dtype_char, _UNITS_FLOAT)


def _build_graph(lib, handle, kind, dtype_char, shapes, stride, pads, dilation, alignment, tf32,
                 deterministic) -> cudnn_graph.GraphPlan | None:  # fmt: skip
    try:
        return cudnn_graph.build(lib, handle, kind, _DATA_TYPES[dtype_char], _COMPUTE_TYPES[dtype_char], shapes,
                                 stride, pads, dilation, alignment, dtype_char == "f", tf32, deterministic)  # fmt: skip
    except AttributeError:  # a cuDNN without the graph API
        return None


def _run_graph(lib: _Library, cp: Any, device: int, graph: cudnn_graph.GraphPlan, key: tuple,
               arrays: dict[str, Any]) -> bool:  # fmt: skip
    """Execute a graph plan; False (and the geometry handed to the legacy calls) when cuDNN refuses it."""
    handle = _handle(lib, cp, device)
    workspace = _workspace(cp, device, graph.workspace) if graph.workspace else None
    pointers = (arrays["x"].data.ptr, arrays["w"].data.ptr, arrays["y"].data.ptr)
    status = cudnn_graph.execute(lib, handle, graph, pointers, None if workspace is None else workspace.data.ptr)
    if not status:
        return True
    with _lock:
        _graphs[key] = False
        graph_refusals.append(f"{key[0]} {key[3]} {key[4]}: {lib.status_text(status)} ({status})")
    return False


def _convolve(cp: Any, kind: str, dtype_char: str, groups: int, stride: Pair, pads: Pads, dilation: Pair,
              arrays: dict[str, Any]) -> bool:  # fmt: skip
    """Run one convolution on cuDNN: ``arrays`` holds x, w and y (contiguous; the output one written).
    False when cuDNN does not take it (the caller then runs the im2col path)."""
    ready = _ready(cp, dtype_char)
    if ready is None:
        return False
    lib, tf32, deterministic, benchmark = ready
    x, w, y = arrays["x"], arrays["w"], arrays["y"]
    x_shape, w_shape, y_shape = tuple(x.shape), tuple(w.shape), tuple(y.shape)
    device = cp.cuda.Device().id
    if not benchmark:
        alignment = 16 if (x.data.ptr | w.data.ptr | y.data.ptr) % 16 == 0 else x.itemsize
        key = (kind, device, dtype_char, x_shape, w_shape, y_shape, stride, pads, dilation, groups, tf32,
               deterministic, alignment)  # fmt: skip
        graph = _graphs.get(key)
        if graph:  # the common case: a plan built (and its geometry checked) on an earlier call
            if _run_graph(lib, cp, device, graph, key, arrays):
                return True
            graph = False
    expected = (x_shape[0], w_shape[0], *(conv_out_size(x_shape[2 + a], w_shape[2 + a], stride[a], *pads[a],
                                                        dilation[a]) for a in (0, 1)))  # fmt: skip
    (pt, pb), (pl, pr) = pads
    if y_shape != expected or pt != pb or pl != pr or x_shape[1] != w_shape[1] * groups:
        return False
    handle = _handle(lib, cp, device)
    if not benchmark and graph is None:
        with _lock:
            graph = _graphs.get(key)
            if graph is None:
                shapes = {"x": x_shape, "w": w_shape, "y": y_shape}
                graph = _build_graph(lib, handle, kind, dtype_char, shapes, stride, pads, dilation, alignment, tf32,
                                     deterministic) or False  # fmt: skip
                _graphs[key] = graph
                while len(_graphs) > _PLAN_CACHE_SIZE:  # the oldest plans go first
                    _, old = _graphs.popitem(last=False)
                    if old:
                        old.destroy()
        if graph and _run_graph(lib, cp, device, graph, key, arrays):
            return True
    got = _plan_for(lib, cp, kind, dtype_char, x_shape, w_shape, stride, pads, dilation, groups, tf32, deterministic,
                    benchmark)  # fmt: skip
    if got is None:
        return False
    handle, plan, algo = got
    if kind == "forward":
        _run(lib, cp, "cudnnConvolutionForward", handle, plan, algo, dtype_char,
             ((plan.x, x), (plan.w, w), (plan.y, y)))  # fmt: skip
    elif kind == "data":
        _run(lib, cp, "cudnnConvolutionBackwardData", handle, plan, algo, dtype_char,
             ((plan.w, w), (plan.y, y), (plan.x, x)))  # fmt: skip
    else:
        _run(lib, cp, "cudnnConvolutionBackwardFilter", handle, plan, algo, dtype_char,
             ((plan.x, x), (plan.y, y), (plan.w, w)))  # fmt: skip
    return True


def conv2d(x: Any, w: Any, stride: Pair, pads: Pads, dilation: Pair, groups: int) -> Any | None:
    """``x`` (N, C, H, W) cross-correlated with ``w`` -> (N, OC, OH, OW), or None when cuDNN is not used."""
    import cupy as cp

    if w.dtype != x.dtype or x.dtype.char not in _DATA_TYPES:
        return None
    x, w = cp.ascontiguousarray(x), cp.ascontiguousarray(w)
    (h, wd), (kh, kw) = x.shape[2:], w.shape[2:]
    oh = conv_out_size(h, kh, stride[0], *pads[0], dilation[0])
    ow = conv_out_size(wd, kw, stride[1], *pads[1], dilation[1])
    if oh <= 0 or ow <= 0:
        return None
    y = cp.empty((x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)
    done = _convolve(cp, "forward", x.dtype.char, groups, stride, pads, dilation, {"x": x, "w": w, "y": y})
    return y if done else None


def conv2d_grad_input(gy: Any, w: Any, in_hw: Pair, stride: Pair, pads: Pads, dilation: Pair,
                      groups: int) -> Any | None:  # fmt: skip
    """Gradient w.r.t. the input, (N, C, *in_hw), or None when cuDNN is not used."""
    import cupy as cp

    if w.dtype != gy.dtype or gy.dtype.char not in _DATA_TYPES:
        return None
    gy, w = cp.ascontiguousarray(gy), cp.ascontiguousarray(w)
    gx = cp.empty((gy.shape[0], w.shape[1] * groups, *in_hw), dtype=gy.dtype)
    done = _convolve(cp, "data", gy.dtype.char, groups, stride, pads, dilation, {"x": gx, "w": w, "y": gy})
    return gx if done else None


def conv2d_grad_weight(x: Any, gy: Any, w_shape: tuple[int, int, int, int], stride: Pair, pads: Pads,
                       dilation: Pair, groups: int) -> Any | None:  # fmt: skip
    """Gradient w.r.t. the weight, ``w_shape``, or None when cuDNN is not used."""
    import cupy as cp

    if gy.dtype != x.dtype or x.dtype.char not in _DATA_TYPES:
        return None
    x, gy = cp.ascontiguousarray(x), cp.ascontiguousarray(gy)
    gw = cp.empty(w_shape, dtype=x.dtype)
    done = _convolve(cp, "filter", x.dtype.char, groups, stride, pads, dilation, {"x": x, "w": gw, "y": gy})
    return gw if done else None


# ---------------------------------------------------------------- batch normalization


_BN_SPATIAL = 1
_P2, _D = ctypes.c_void_p, ctypes.c_double
_BN_PROTOTYPES: dict[str, tuple[Any, ...]] = {
    "cudnnDeriveBNTensorDescriptor": (_P2, _P2, ctypes.c_int),
    "cudnnBatchNormalizationForwardTraining": (_P2, ctypes.c_int, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _D,
                                               _P2, _P2, _D, _P2, _P2),  # fmt: skip
    "cudnnBatchNormalizationForwardInference": (_P2, ctypes.c_int, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2,
                                                _P2, _D),  # fmt: skip
    "cudnnBatchNormalizationBackward": (_P2, ctypes.c_int, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2, _P2,
                                        _P2, _P2, _P2, _D, _P2, _P2),  # fmt: skip
}
_bn_descriptors: dict[tuple, tuple[ctypes.c_void_p, ctypes.c_void_p] | None] = {}
_bn_constants: dict[tuple, tuple[Any, Any]] = {}


@dataclass
class SavedBatchNorm:
    """What cuDNN's batch-norm backward needs from the forward: the input, its mean and 1/std per channel."""

    x: Any
    mean: Any
    eps: float


def _bn_descriptors_for(lib: _Library, dtype_char: str, shape: tuple[int, ...]):
    key = (dtype_char, shape)
    if key not in _bn_descriptors:
        x, stats = _new(lib, "Tensor"), _new(lib, "Tensor")
        ok = not (lib.call("cudnnSetTensor4dDescriptor", x, _NCHW, _DATA_TYPES[dtype_char], *shape)
                  or lib.call("cudnnDeriveBNTensorDescriptor", stats, x, _BN_SPATIAL))  # fmt: skip
        if not ok:
            lib.call("cudnnDestroyTensorDescriptor", x)
            lib.call("cudnnDestroyTensorDescriptor", stats)
        while len(_bn_descriptors) >= _PLAN_CACHE_SIZE:  # the oldest shapes go first, as plans do
            old = _bn_descriptors.pop(next(iter(_bn_descriptors)))
            for desc in old or ():
                lib.call("cudnnDestroyTensorDescriptor", desc)
        _bn_descriptors[key] = (x, stats) if ok else None
    return _bn_descriptors[key]


def _bn_ready(cp: Any, x: Any, *params: Any):
    """(lib, handle, x descriptor, stats descriptor) when cuDNN takes this batch norm, else None: 4-d float32
    or float64 ``x`` with parameters of its dtype."""
    if x.ndim != 4 or x.dtype.char not in "fd" or any(p is not None and p.dtype != x.dtype for p in params):
        return None
    ready = _ready(cp, x.dtype.char)
    if ready is None or not ready[0].has_batch_norm:
        return None
    lib = ready[0]
    descs = _bn_descriptors_for(lib, x.dtype.char, tuple(x.shape))
    if descs is None:
        return None
    return lib, _handle(lib, cp, cp.cuda.Device().id), descs[0], descs[1]


def _scale_and_bias(cp: Any, weight: Any, bias: Any, c: int, dtype: Any) -> tuple[Any, Any]:
    """The weight and bias, or ones and zeros where the layer has none (cuDNN needs both pointers)."""
    if weight is not None and bias is not None:
        return weight, bias
    key = (cp.cuda.Device().id, c, dtype.char)
    if key not in _bn_constants:
        _bn_constants[key] = (cp.ones(c, dtype=dtype), cp.zeros(c, dtype=dtype))
    ones, zeros = _bn_constants[key]
    return (ones if weight is None else weight), (zeros if bias is None else bias)


def _ptr(a: Any) -> int | None:
    return None if a is None else a.data.ptr


def batch_norm_training(x: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, momentum: float,
                        eps: float) -> tuple[Any, SavedBatchNorm, Any] | None:  # fmt: skip
    """Training-mode batch norm of contiguous ``x`` (N, C, H, W) on cuDNN: ``(y, saved, inv_std)``, the running
    statistics updated in place (unbiased variance, torch's rule); None when cuDNN does not take it."""
    import cupy as cp

    ready = _bn_ready(cp, x, weight, bias, running_mean, running_var)
    if ready is None:
        return None
    lib, handle, x_desc, stats_desc = ready
    c = x.shape[1]
    scale, shift = _scale_and_bias(cp, weight, bias, c, x.dtype)
    y = cp.empty(x.shape, dtype=x.dtype)  # x is C-contiguous; empty_like's layout logic costs 5 us a call
    mean, inv_std = cp.empty(c, dtype=x.dtype), cp.empty(c, dtype=x.dtype)
    one, zero = _units(x.dtype.char)
    status = lib.dll.cudnnBatchNormalizationForwardTraining(
        handle, _BN_SPATIAL, one, zero, x_desc, x.data.ptr, x_desc, y.data.ptr,
        stats_desc, scale.data.ptr, shift.data.ptr, float(momentum), _ptr(running_mean), _ptr(running_var),
        float(eps), mean.data.ptr, inv_std.data.ptr,
    )  # fmt: skip
    if status:
        return None
    return y, SavedBatchNorm(x, mean, eps), inv_std


def batch_norm_inference(x: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, eps: float) -> Any:
    """Eval-mode batch norm of contiguous ``x`` (N, C, H, W) with the running statistics, or None."""
    import cupy as cp

    ready = _bn_ready(cp, x, weight, bias, running_mean, running_var)
    if ready is None or running_mean is None:
        return None
    lib, handle, x_desc, stats_desc = ready
    scale, shift = _scale_and_bias(cp, weight, bias, x.shape[1], x.dtype)
    y = cp.empty(x.shape, dtype=x.dtype)
    one, zero = _units(x.dtype.char)
    status = lib.dll.cudnnBatchNormalizationForwardInference(
        handle, _BN_SPATIAL, one, zero, x_desc, x.data.ptr, x_desc, y.data.ptr,
        stats_desc, scale.data.ptr, shift.data.ptr, running_mean.data.ptr, running_var.data.ptr, float(eps),
    )  # fmt: skip
    return None if status else y


def batch_norm_backward(gy: Any, saved: SavedBatchNorm, inv_std: Any, weight: Any) -> tuple[Any, Any, Any] | None:
    """``(gx, gweight, gbias)`` of :func:`batch_norm_training` (training-mode gradients), or None when cuDNN
    was switched off since the forward."""
    import cupy as cp

    x = saved.x
    gy = cp.ascontiguousarray(gy)
    ready = _bn_ready(cp, x, weight)
    if ready is None or gy.dtype != x.dtype:
        return None
    lib, handle, x_desc, stats_desc = ready
    c = x.shape[1]
    scale, _ = _scale_and_bias(cp, weight, None, c, x.dtype)
    gx = cp.empty(x.shape, dtype=x.dtype)
    gw, gb = cp.empty(c, dtype=x.dtype), cp.empty(c, dtype=x.dtype)
    one, zero = _units(x.dtype.char)
    lib.check(
        "cudnnBatchNormalizationBackward", handle, _BN_SPATIAL, one, zero,
        one, zero, x_desc, x.data.ptr, x_desc, gy.data.ptr, x_desc, gx.data.ptr,
        stats_desc, scale.data.ptr, gw.data.ptr, gb.data.ptr, float(saved.eps), saved.mean.data.ptr,
        inv_std.data.ptr,
    )  # fmt: skip
    return gx, gw, gb
