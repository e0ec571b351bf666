"""How ``kernels/cudnn.py`` routes a convolution, on any machine: a fake cupy module and a fake library stand in
for the GPU, and the graph plans, the legacy calls and the fallbacks are recorded instead of run. The GPU tests
(tests/kernels/test_cudnn.py, ``-m gpu``) run the same paths on cuDNN itself."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import hubkit.backends.cudnn as flags
from hubkit.kernels import cudnn, cudnn_graph


class _Memory:
    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


class _Array:
    """What the dispatch reads of a cupy array: shape, dtype, itemsize, size and the device pointer."""

    next_ptr = 1 << 20

    def __init__(self, shape, dtype=np.float32, offset: int = 0) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.itemsize, self.ndim, self.size = self.dtype.itemsize, len(self.shape), int(np.prod(self.shape))
        _Array.next_ptr += 1 << 16
        self.data = _Memory(_Array.next_ptr + offset)


class _Lib:
    path, version, cudart_version = "fake-libcudnn", 91900, 13000

    def status_text(self, status: int) -> str:
        return "CUDNN_STATUS_NOT_SUPPORTED" if status == 3000 else f"status {status}"


@pytest.fixture
def fake(monkeypatch):
    """A fake cupy and cuDNN; returns the record of what ran."""
    cupy = types.SimpleNamespace(
        cuda=types.SimpleNamespace(Device=lambda *a: types.SimpleNamespace(id=0),
                                   get_current_stream=lambda: cupy.stream),
        empty=lambda shape, dtype=None: _Array(shape if isinstance(shape, tuple) else (shape,), dtype or np.uint8),
        ascontiguousarray=lambda a: a,
        stream=types.SimpleNamespace(ptr=0),
        uint8=np.uint8,
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    cudnn._reset_for_tests()
    monkeypatch.setattr(cudnn, "_library", _Lib())
    monkeypatch.setattr(cudnn, "_searched", True)
    monkeypatch.setattr(cudnn, "_checked_runtime", True)
    monkeypatch.setattr(cudnn, "_handle", lambda lib, cp, device: "handle")
    record = types.SimpleNamespace(built=[], executed=[], legacy=[], status=0)

    def build(lib, handle, kind, dtype_char, shapes, stride, pads, dilation, alignment, tf32, deterministic):
        record.built.append((kind, shapes["x"], alignment, tf32, deterministic))
        return cudnn_graph.GraphPlan(cudnn_graph.Descriptors(lib), len(record.built), 0, ())

    def execute(lib, handle, plan, pointers, workspace):
        record.executed.append(plan.plan)
        return record.status

    def plan_for(lib, cp, kind, *args):
        return "handle", types.SimpleNamespace(x="xd", w="wd", y="yd"), "algo"

    monkeypatch.setattr(cudnn, "_build_graph", build)
    monkeypatch.setattr(cudnn_graph, "execute", execute)
    monkeypatch.setattr(cudnn, "_plan_for", plan_for)
    monkeypatch.setattr(cudnn, "_run", lambda lib, cp, name, *args: record.legacy.append(name))
    yield record
    cudnn._reset_for_tests()


ARGS = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)


def _three(x, w, gy, args=ARGS):
    return (cudnn.conv2d(x, w, *args), cudnn.conv2d_grad_input(gy, w, x.shape[2:], *args),
            cudnn.conv2d_grad_weight(x, gy, w.shape, *args))  # fmt: skip


def test_a_plan_is_built_once_per_kind_and_geometry_then_reused(fake):
    x, w, gy = _Array((2, 4, 8, 8)), _Array((6, 4, 3, 3)), _Array((2, 6, 8, 8))
    y, gx, gw = _three(x, w, gy)
    assert y.shape == (2, 6, 8, 8) and gx.shape == (2, 4, 8, 8) and gw.shape == (6, 4, 3, 3)
    _three(x, w, gy)
    assert [b[0] for b in fake.built] == ["forward", "data", "filter"]
    assert fake.executed == [1, 2, 3, 1, 2, 3] and fake.legacy == []


def test_the_rules_are_part_of_the_plans_key(fake, monkeypatch):
    x, w = _Array((2, 4, 8, 8)), _Array((6, 4, 3, 3))
    cudnn.conv2d(x, w, *ARGS)
    monkeypatch.setattr(flags, "allow_tf32", False)
    cudnn.conv2d(x, w, *ARGS)
    monkeypatch.setattr(flags, "deterministic", True)
    cudnn.conv2d(x, w, *ARGS)
    assert [(b[3], b[4]) for b in fake.built] == [(True, False), (False, False), (False, True)]


def test_a_misaligned_pointer_gets_a_plan_of_its_own(fake):
    w = _Array((6, 4, 3, 3))
    cudnn.conv2d(_Array((2, 4, 8, 8)), w, *ARGS)
    cudnn.conv2d(_Array((2, 4, 8, 8), offset=4), w, *ARGS)  # a view 4 bytes into a buffer
    assert [b[2] for b in fake.built] == [16, 4]


def test_a_plan_refused_at_run_time_hands_the_geometry_to_the_legacy_calls(fake):
    fake.status = 3000
    x, w, gy = _Array((2, 4, 8, 8)), _Array((6, 4, 3, 3)), _Array((2, 6, 8, 8))
    _three(x, w, gy)
    names = ["cudnnConvolutionForward", "cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter"]
    assert fake.legacy == names and fake.executed == [1, 2, 3]
    assert len(cudnn.graph_refusals) == 3 and "CUDNN_STATUS_NOT_SUPPORTED" in cudnn.graph_refusals[0]
    _three(x, w, gy)  # the refused plans are not tried again
    assert fake.legacy == names * 2 and fake.executed == [1, 2, 3] and len(fake.built) == 3


def test_benchmark_mode_uses_the_legacy_find_calls(fake, monkeypatch):
    monkeypatch.setattr(flags, "benchmark", True)
    _three(_Array((2, 4, 8, 8)), _Array((6, 4, 3, 3)), _Array((2, 6, 8, 8)))
    assert fake.built == [] and len(fake.legacy) == 3


@pytest.mark.parametrize(
    "x_shape, w_shape, args",
    [
        ((2, 4, 8, 8), (6, 4, 2, 2), ((1, 1), ((0, 1), (0, 1)), (1, 1), 1)),  # asymmetric padding
        ((2, 4, 8, 8), (6, 3, 3, 3), ARGS),  # channels do not match the weight
        ((2, 4, 2, 2), (6, 4, 5, 5), ((1, 1), ((0, 0), (0, 0)), (1, 1), 1)),  # empty output
    ],
)
def test_what_cudnn_cannot_run_returns_none(fake, x_shape, w_shape, args):
    assert cudnn.conv2d(_Array(x_shape), _Array(w_shape), *args) is None
    assert fake.built == [] and fake.legacy == []


def test_a_gradient_that_does_not_fit_the_geometry_returns_none(fake):
    x, w = _Array((2, 4, 8, 8)), _Array((6, 4, 3, 3))
    assert cudnn.conv2d_grad_weight(x, _Array((2, 6, 7, 7)), w.shape, *ARGS) is None
    assert cudnn.conv2d_grad_input(_Array((2, 6, 7, 7)), w, (8, 8), *ARGS) is None


def test_disabled_or_other_dtypes_never_reach_cudnn(fake, monkeypatch):
    x, w = _Array((2, 4, 8, 8)), _Array((6, 4, 3, 3))
    assert cudnn.conv2d(_Array((2, 4, 8, 8), np.int32), _Array((6, 4, 3, 3), np.int32), *ARGS) is None
    assert cudnn.conv2d(x, _Array((6, 4, 3, 3), np.float64), *ARGS) is None
    monkeypatch.setattr(flags, "enabled", False)
    assert cudnn.conv2d(x, w, *ARGS) is None
    assert fake.built == [] and fake.legacy == []


def test_a_cudnn_for_another_cuda_major_version_is_not_mixed_in(fake, monkeypatch):
    import cupy

    monkeypatch.setattr(cudnn, "_checked_runtime", None)
    cupy.cuda.runtime = types.SimpleNamespace(runtimeGetVersion=lambda: 12080)  # cupy on CUDA 12.8
    assert cudnn.conv2d(_Array((2, 4, 8, 8)), _Array((6, 4, 3, 3)), *ARGS) is None
    reason = cudnn.unavailable_reason()
    assert "built for CUDA 13" in reason and "cupy runs on CUDA 12" in reason
    assert "nvidia-cudnn wheel for CUDA 12" in reason
    assert flags.is_available() is False
    assert fake.built == [] and fake.legacy == []


class _PackDll:
    """The graph API's variant-pack calls, recorded; ``fail`` names a call that returns an error status."""

    def __init__(self, fail: str = "") -> None:
        self.calls, self.live, self.fail, self.next = [], set(), fail, 100

    def _status(self, name: str) -> int:
        self.calls.append(name)
        return 3000 if name == self.fail else 0

    def cudnnBackendCreateDescriptor(self, kind, ref):
        if self._status("create"):
            return 3000
        self.next += 1
        ref._obj.value = self.next
        self.live.add(self.next)
        return 0

    def cudnnBackendSetAttribute(self, *args):
        return self._status("set")

    def cudnnBackendFinalize(self, pack):
        return self._status("finalize")

    def cudnnBackendExecute(self, handle, plan, pack):
        assert pack in self.live, "executed a destroyed variant pack"
        return self._status("execute")

    def cudnnBackendDestroyDescriptor(self, pack):
        self.live.discard(pack.value if hasattr(pack, "value") else pack)
        self.calls.append("destroy")
        return 0


def _pack_lib(dll):
    return types.SimpleNamespace(dll=dll, call=lambda name, *args: getattr(dll, name)(*args))


def test_a_steady_call_reuses_its_variant_pack_and_the_oldest_packs_are_freed():
    dll = _PackDll()
    lib = _pack_lib(dll)
    plan = cudnn_graph.GraphPlan(cudnn_graph.Descriptors(lib), 7, 0, ())
    assert cudnn_graph.execute(lib, "handle", plan, (1, 2, 3), None) == 0
    assert cudnn_graph.execute(lib, "handle", plan, (1, 2, 3), None) == 0
    assert dll.calls.count("create") == 1 and dll.calls.count("execute") == 2
    cudnn_graph.execute(lib, "handle", plan, (1, 2, 3), 64)  # another workspace is another pack
    assert dll.calls.count("create") == 2
    for i in range(cudnn_graph.PACKS_PER_PLAN):
        cudnn_graph.execute(lib, "handle", plan, (10 + i, 2, 3), None)
    assert len(plan.packs) == cudnn_graph.PACKS_PER_PLAN == len(dll.live)
    assert (1, 2, 3, None) not in plan.packs and dll.calls.count("destroy") == 2
    plan.destroy()
    assert dll.live == set() and not plan.packs


@pytest.mark.parametrize("fail", ["create", "set", "finalize", "execute"])
def test_a_refused_variant_pack_returns_the_status_and_leaves_nothing_behind(fail):
    dll = _PackDll(fail)
    lib = _pack_lib(dll)
    plan = cudnn_graph.GraphPlan(cudnn_graph.Descriptors(lib), 7, 0, ())
    assert cudnn_graph.execute(lib, "handle", plan, (1, 2, 3), None) == 3000
    if fail == "execute":  # a finalized pack stays with its plan (freed with it)
        assert len(plan.packs) == 1
        plan.destroy()
    assert not plan.packs and dll.live == set()


def test_the_workspace_is_kept_per_stream_and_grows_to_the_largest_size(fake):
    import cupy

    first = cudnn._workspace(cupy, 0, 4096)
    assert cudnn._workspace(cupy, 0, 100) is first and first.shape == (4096,)
    bigger = cudnn._workspace(cupy, 0, 8192)
    assert bigger is not first and bigger.shape == (8192,) and cudnn._workspace(cupy, 0, 4096) is bigger
    cupy.stream = types.SimpleNamespace(ptr=77)  # another stream gets a buffer of its own
    assert cudnn._workspace(cupy, 0, 4096) is not bigger
    assert cudnn._workspace(cupy, 1, 4096) is not bigger  # and so does another device
