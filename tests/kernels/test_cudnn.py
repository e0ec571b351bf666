"""cuDNN convolutions (``hubkit/kernels/cudnn.py``).

Without a GPU: the library lookup, its error messages and the descriptors (cuDNN describes convolutions on the
host, so the output shapes it computes are checked against hubkit's for odd geometries; these need NVIDIA's
cuDNN wheel, which the parity extra's torch installs). With a GPU (``-m gpu``): cuDNN's forward, input and
weight gradients against hubkit's im2col path in FP32 and float64, TF32 by default, the deterministic and
benchmark flags, and the geometries that fall back.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import hubkit
import hubkit.backends.cudnn as flags
from hubkit.errors import DeviceError
from hubkit.kernels import cudnn, cudnn_graph
from hubkit.kernels.shapes import conv_out_size


@pytest.fixture(autouse=True)
def _fresh_library():
    cudnn._reset_for_tests()
    yield
    cudnn._reset_for_tests()


def _installed() -> bool:
    return any(path for path in cudnn._candidates() if "nvidia" in path)


# NVIDIA's cuDNN wheel comes with the parity extra's torch, so CI runs these with the parity tests
needs_wheel = pytest.mark.skipif(not _installed(), reason="NVIDIA's cuDNN wheel is missing")


# ---------------------------------------------------------------- lookup and errors (any machine)


def test_a_missing_library_is_reported_with_its_path(tmp_path, monkeypatch):
    missing = tmp_path / "libcudnn.so.9"
    monkeypatch.setenv("HUBKIT_CUDNN_LIBRARY", str(missing))
    assert cudnn.library() is None
    assert flags.is_available() is False
    assert flags.version() is None
    assert str(missing) in flags.unavailable_reason()


def test_a_file_that_is_not_a_library_is_reported(tmp_path, monkeypatch):
    bogus = tmp_path / "libcudnn.so.9"
    bogus.write_bytes(b"not an ELF file")
    monkeypatch.setenv("HUBKIT_CUDNN_LIBRARY", str(bogus))
    assert cudnn.library() is None
    assert str(bogus) in cudnn.unavailable_reason()


def test_nothing_found_says_what_to_install(monkeypatch):
    monkeypatch.setattr(cudnn, "_candidates", lambda: [])
    assert cudnn.library() is None
    assert "pip install nvidia-cudnn-cu12 or nvidia-cudnn-cu13" in cudnn.unavailable_reason()


def test_without_cupy_and_a_gpu_convolutions_never_reach_cudnn():
    # the flags module answers on any machine; the kernels only run on cupy arrays
    assert flags.enabled is True and flags.allow_tf32 is True
    assert flags.deterministic is False and flags.benchmark is False


# ---------------------------------------------------------------- the real library, no GPU needed


GEOMETRIES = [
    # x shape, w shape, stride, pads, dilation, groups
    ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((1, 4, 9, 8), (6, 2, 2, 3), (2, 3), ((1, 1), (2, 2)), (1, 1), 2),
    ((3, 4, 10, 11), (4, 1, 3, 3), (1, 2), ((2, 2), (2, 2)), (2, 2), 4),
    ((2, 6, 7, 5), (6, 3, 1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 2),
    ((2, 3, 16, 16), (8, 3, 7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1), 1),
    ((1, 8, 5, 5), (16, 8, 5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
]


@pytest.mark.parity
@needs_wheel
@pytest.mark.parametrize("dtype", ["f", "d", "e"])
@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", GEOMETRIES)
def test_descriptors_give_hubkits_output_shape(xs, ws, stride, pads, dil, groups, dtype):
    lib = cudnn.library()
    assert lib is not None, cudnn.unavailable_reason()
    plan = cudnn.make_plan(lib, dtype, xs, ws, stride, pads, dil, groups, tf32=True)
    want = (xs[0], ws[0], *(conv_out_size(xs[2 + a], ws[2 + a], stride[a], *pads[a], dil[a]) for a in (0, 1)))
    assert plan.y_shape == want
    plan.destroy(lib)


@pytest.mark.parity
@needs_wheel
def test_math_type_follows_dtype_and_tf32_as_torchs_does():
    lib = cudnn.library()
    args = ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    expected = {("f", True): cudnn._DEFAULT_MATH, ("f", False): cudnn._FMA_MATH, ("d", True): cudnn._DEFAULT_MATH,
                ("d", False): cudnn._DEFAULT_MATH, ("e", False): cudnn._TENSOR_OP_MATH}  # fmt: skip
    for (dtype, tf32), math in expected.items():
        plan = cudnn.make_plan(lib, dtype, *args, tf32=tf32)
        assert plan.math == math, (dtype, tf32)
        plan.destroy(lib)


@pytest.mark.parity
@needs_wheel
def test_what_cudnn_cannot_describe_is_left_to_im2col():
    lib = cudnn.library()
    asymmetric = ((2, 3, 9, 8), (4, 3, 2, 2), (1, 1), ((0, 1), (0, 1)), (1, 1), 1)
    assert cudnn.make_plan(lib, "f", *asymmetric, tf32=True) is None
    integer = ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert cudnn.make_plan(lib, "i", *integer, tf32=True) is None
    kernel_larger_than_input = ((1, 3, 4, 4), (4, 3, 7, 7), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert cudnn.make_plan(lib, "f", *kernel_larger_than_input, tf32=True) is None


@pytest.mark.parity
@needs_wheel
def test_a_failing_call_raises_a_device_error_that_names_the_status_and_the_way_out():
    lib = cudnn.library()
    handle = ctypes.c_void_p()
    status = lib.call("cudnnCreate", ctypes.byref(handle))
    if status == 0:
        pytest.skip("this machine has a GPU: cudnnCreate succeeds")
    with pytest.raises(DeviceError) as info:
        lib.check("cudnnCreate", ctypes.byref(handle))
    assert isinstance(info.value, cudnn.CudnnError)
    message = str(info.value)
    assert "cudnnCreate" in message and lib.status_text(status) in message
    assert "hubkit.backends.cudnn.enabled = False" in message


@pytest.mark.parity
@needs_wheel
@pytest.mark.parametrize("kind", ["forward", "data", "filter"])
@pytest.mark.parametrize("dtype", ["f", "d", "e"])
@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", GEOMETRIES)
def test_graph_api_operations_finalize(xs, ws, stride, pads, dil, groups, dtype, kind):
    lib = cudnn.library()
    ys = (xs[0], ws[0], *(conv_out_size(xs[2 + a], ws[2 + a], stride[a], *pads[a], dil[a]) for a in (0, 1)))
    d = cudnn_graph.Descriptors(lib)
    try:
        op = cudnn_graph.operation(d, kind, cudnn._DATA_TYPES[dtype], cudnn._COMPUTE_TYPES[dtype],
                                   {"x": xs, "w": ws, "y": ys}, stride, pads, dil, 16)  # fmt: skip
        assert op and len(d.made) == 5  # three tensors, the convolution, the operation
    finally:
        d.destroy()
    assert d.made == []


@pytest.mark.parity
@needs_wheel
def test_graph_api_refuses_inconsistent_shapes_and_a_missing_handle():
    lib = cudnn.library()
    shapes = {"x": (2, 4, 9, 9), "w": (8, 4, 3, 3), "y": (2, 8, 7, 7)}  # y should be 5x5 at stride 2
    d = cudnn_graph.Descriptors(lib)
    with pytest.raises(cudnn_graph.Refused, match="forward operation"):
        cudnn_graph.operation(d, "forward", 0, 0, shapes, (2, 2), ((1, 1), (1, 1)), (1, 1), 16)
    d.destroy()
    shapes["y"] = (2, 8, 5, 5)
    args = (lib, ctypes.c_void_p(0), "forward", 0, 0, shapes, (2, 2), ((1, 1), (1, 1)), (1, 1), 16, True, True, False)
    assert cudnn_graph.build(*args) is None  # no handle (and here no GPU): the legacy calls take over


@pytest.mark.parity
@needs_wheel
def test_the_version_is_reported():
    assert flags.is_available() is True
    assert flags.version() >= 8000
    assert flags.unavailable_reason() is None


# ---------------------------------------------------------------- on a GPU


@pytest.fixture
def cp():
    cupy = pytest.importorskip("cupy")
    if not flags.is_available():
        pytest.fail(f"cuDNN is not available on this GPU machine: {flags.unavailable_reason()}")
    return cupy


def _calls(monkeypatch) -> list[str]:
    """Spy on both ways a convolution reaches cuDNN: "graph <kind>" (the graph API's plans) or the legacy
    call's name."""
    seen: list[str] = []
    run, execute = cudnn._run, cudnn_graph.execute

    def spy_run(lib, cp, name, *args):
        seen.append(name)
        return run(lib, cp, name, *args)

    def spy_execute(lib, handle, plan, pointers, workspace):
        status = execute(lib, handle, plan, pointers, workspace)
        kind = next(k for k, g in cudnn._graphs.items() if g is plan)[0]
        seen.append(f"graph {kind}" if status == 0 else f"graph {kind} refused")
        return status

    monkeypatch.setattr(cudnn, "_run", spy_run)
    monkeypatch.setattr(cudnn_graph, "execute", spy_execute)
    return seen


LEGACY = {"forward": "cudnnConvolutionForward", "data": "cudnnConvolutionBackwardData",
          "filter": "cudnnConvolutionBackwardFilter"}  # fmt: skip


def _on_cudnn(calls: list[str]) -> None:
    """Each of forward, data and filter ran on cuDNN once, on either path."""
    kinds = [c.split()[1] if c.startswith("graph") else next(k for k, v in LEGACY.items() if v == c) for c in calls
             if not c.endswith("refused")]  # fmt: skip
    assert kinds == ["forward", "data", "filter"], calls


def _three(cp, x, w, gy, stride, pads, dil, groups):
    from hubkit.kernels import cuda

    y = cuda.conv2d(x, w, None, stride, pads, dil, groups)
    gx = cuda.conv2d_grad_input(gy, w, x.shape[2:], stride, pads, dil, groups)
    gw = cuda.conv2d_grad_weight(x, gy, w.shape[2:], stride, pads, dil, groups)
    return [cp.asnumpy(a) for a in (y, gx, gw)]


def _operands(cp, xs, ws, stride, pads, dil, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    oh, ow = (conv_out_size(xs[2 + a], ws[2 + a], stride[a], *pads[a], dil[a]) for a in (0, 1))
    gy = rng.standard_normal((xs[0], ws[0], oh, ow)).astype(dtype)
    return cp.asarray(x), cp.asarray(w), cp.asarray(gy)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("xs, ws, stride, pads, dil, groups", GEOMETRIES)
def test_cudnn_matches_im2col(cp, xs, ws, stride, pads, dil, groups, dtype, tol, monkeypatch):
    x, w, gy = _operands(cp, xs, ws, stride, pads, dil, dtype)
    calls = _calls(monkeypatch)
    got = _three(cp, x, w, gy, stride, pads, dil, groups)
    _on_cudnn(calls)
    monkeypatch.setattr(flags, "enabled", False)
    want = _three(cp, x, w, gy, stride, pads, dil, groups)
    assert len(calls) == 3
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * 10)


@pytest.mark.gpu
def test_non_contiguous_inputs_and_batch_one(cp, monkeypatch):
    x, w, gy = _operands(cp, (1, 8, 12, 12), (8, 4, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), np.float32)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 2)
    xt = cp.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, strided
    assert not xt.flags.c_contiguous
    got = _three(cp, xt, w, gy, *args)
    monkeypatch.setattr(flags, "enabled", False)
    for g, r in zip(got, _three(cp, x, w, gy, *args)):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.tf32
def test_tf32_is_the_default_for_float32_and_stays_within_its_precision(cp, monkeypatch):
    assert flags.allow_tf32 is True
    xs, ws, args = (4, 64, 28, 28), (64, 64, 3, 3), ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    x, w, gy = _operands(cp, xs, ws, *args[:3], np.float64)
    exact = _three(cp, x, w, gy, *args)
    got = _three(cp, x.astype(cp.float32), w.astype(cp.float32), gy.astype(cp.float32), *args)
    for g, r in zip(got, exact):
        scale = np.abs(r).max()
        assert np.abs(g - r).max() <= 5e-3 * scale  # TF32 keeps 10 mantissa bits; FP32 would be ~1e-6
    monkeypatch.setattr(flags, "allow_tf32", False)
    fp32 = _three(cp, x.astype(cp.float32), w.astype(cp.float32), gy.astype(cp.float32), *args)
    for g, r in zip(fp32, exact):
        assert np.abs(g - r).max() <= 1e-5 * np.abs(r).max()


@pytest.mark.gpu
def test_float16_runs_on_cudnn(cp, monkeypatch):
    x, w, gy = _operands(cp, (2, 16, 10, 10), (32, 16, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), np.float16)
    calls = _calls(monkeypatch)
    got = _three(cp, x, w, gy, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    _on_cudnn(calls)
    want = _three(cp, x.astype(cp.float64), w.astype(cp.float64), gy.astype(cp.float64), (1, 1),
                  ((1, 1), (1, 1)), (1, 1), 1)  # fmt: skip
    for g, r in zip(got, want):
        assert np.abs(g.astype(np.float64) - r).max() <= 2e-2 * np.abs(r).max()


@pytest.mark.gpu
@pytest.mark.parametrize("setting", ["deterministic", "use_deterministic_algorithms"])
def test_deterministic_weight_gradients_repeat_bit_for_bit(cp, setting, monkeypatch):
    if setting == "deterministic":
        monkeypatch.setattr(flags, "deterministic", True)
    else:
        hubkit.use_deterministic_algorithms(True)
    try:
        from hubkit.kernels import cuda

        x, w, gy = _operands(cp, (32, 64, 28, 28), (64, 64, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), np.float32)
        args = (w.shape[2:], (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        first = cuda.conv2d_grad_weight(x, gy, *args)
        for _ in range(3):
            assert (cuda.conv2d_grad_weight(x, gy, *args) == first).all()
        plans = [g for key, g in cudnn._graphs.items() if key[0] == "filter" and g]
        assert plans and all(cudnn_graph.NOTE_NONDETERMINISTIC not in g.engine_notes for g in plans)
    finally:
        hubkit.use_deterministic_algorithms(False)


@pytest.mark.gpu
def test_benchmark_mode_times_algorithms_once_per_geometry(cp, monkeypatch):
    monkeypatch.setattr(flags, "benchmark", True)
    found = []
    call = cudnn._Library.call

    def spy(self, name, *args):
        if name.startswith("cudnnFind"):
            found.append(name)
        return call(self, name, *args)

    monkeypatch.setattr(cudnn._Library, "call", spy)
    x, w, gy = _operands(cp, (8, 32, 20, 20), (32, 32, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), np.float32)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    got = _three(cp, x, w, gy, *args)
    _three(cp, x, w, gy, *args)
    assert sorted(found) == ["cudnnFindConvolutionBackwardDataAlgorithm",
                             "cudnnFindConvolutionBackwardFilterAlgorithm", "cudnnFindConvolutionForwardAlgorithm"]
    monkeypatch.setattr(flags, "enabled", False)
    # the timed winner may be an FFT or Winograd algorithm, whose error scales with the largest outputs
    for g, r in zip(got, _three(cp, x, w, gy, *args)):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-4 * float(abs(r).max()))


@pytest.mark.gpu
def test_float32_layers_run_on_graph_plans(cp, monkeypatch):
    calls = _calls(monkeypatch)
    for xs, ws, stride in (((8, 64, 56, 56), (64, 64, 3, 3), (1, 1)), ((8, 64, 56, 56), (128, 64, 1, 1), (2, 2))):
        pads = ((ws[2] // 2,) * 2, (ws[3] // 2,) * 2)
        x, w, gy = _operands(cp, xs, ws, stride, pads, (1, 1), np.float32)
        _three(cp, x, w, gy, stride, pads, (1, 1), 1)
    assert calls == ["graph forward", "graph data", "graph filter"] * 2
    assert cudnn.graph_refusals == []


@pytest.mark.gpu
def test_a_graph_plan_refused_at_run_time_moves_to_the_legacy_calls(cp, monkeypatch):
    monkeypatch.setattr(cudnn_graph, "execute", lambda *args: 3000)  # CUDNN_STATUS_NOT_SUPPORTED
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    x, w, gy = _operands(cp, (2, 8, 10, 10), (8, 8, 3, 3), *args[:3], np.float32)
    calls = _calls(monkeypatch)
    got = _three(cp, x, w, gy, *args)
    assert [c for c in calls if not c.startswith("graph")] == list(LEGACY.values())
    assert len(cudnn.graph_refusals) == 3 and "CUDNN_STATUS" in cudnn.graph_refusals[0]
    monkeypatch.setattr(flags, "enabled", False)
    for g, r in zip(got, _three(cp, x, w, gy, *args)):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-4)


@pytest.mark.gpu
def test_asymmetric_padding_falls_back_to_im2col(cp, monkeypatch):
    calls = _calls(monkeypatch)
    x, w, gy = _operands(cp, (2, 4, 9, 8), (6, 4, 2, 2), (1, 1), ((0, 1), (1, 0)), (1, 1), np.float32)
    got = _three(cp, x, w, gy, (1, 1), ((0, 1), (1, 0)), (1, 1), 1)
    assert calls == []
    from hubkit.kernels import cpu

    want = cpu.conv2d(cp.asnumpy(x), cp.asnumpy(w), None, (1, 1), ((0, 1), (1, 0)), (1, 1), 1)
    np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_conv_transpose_with_output_padding_matches_the_cpu(cp):
    import hubkit.nn.functional as F

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 7, 9)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    outs = []
    for device in ("cpu", "cuda"):
        xt = hubkit.tensor(x, device=device, requires_grad=True)
        wt = hubkit.tensor(w, device=device, requires_grad=True)
        y = F.conv_transpose2d(xt, wt, stride=2, padding=1, output_padding=1, groups=2)
        (y * y).sum().backward()
        outs.append([y.cpu().numpy(), xt.grad.cpu().numpy(), wt.grad.cpu().numpy()])
    for g, r in zip(outs[1], outs[0]):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-3)


@pytest.mark.gpu
def test_plans_are_built_once_per_geometry(cp):
    x, w, gy = _operands(cp, (2, 8, 10, 10), (8, 8, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), np.float32)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    _three(cp, x, w, gy, *args)
    count = len(cudnn._graphs)
    _three(cp, x, w, gy, *args)
    assert len(cudnn._graphs) == count == 3  # forward, data, filter


@pytest.mark.gpu
def test_convolutions_on_another_stream_get_their_own_workspace(cp):
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    x, w, gy = _operands(cp, (8, 64, 28, 28), (64, 64, 3, 3), *args[:3], np.float32)
    want = _three(cp, x, w, gy, *args)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        got = _three(cp, x, w, gy, *args)
    stream.synchronize()
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-4)
    needed = any(g and g.workspace for key, g in cudnn._graphs.items() if key[3] == x.shape)
    assert (stream.ptr in {stream_ptr for _, stream_ptr in cudnn._workspaces}) == needed
