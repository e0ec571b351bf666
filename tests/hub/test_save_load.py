"""hubkit.save / hubkit.load with torch.save / torch.load semantics, and the rule telling a file from a model name."""

from __future__ import annotations

import io
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from checkpoint_builders import FIXTURES, call, s, state_pickle, tensor, torch_zip

import hubkit
from hubkit.errors import (
    ArgumentError,
    ArgumentTypeError,
    CheckpointError,
    CheckpointNotFoundError,
    DeviceError,
    HubkitError,
    UnsafeCheckpointError,
)
from hubkit.hub.checkpoint.formats import TensorData, checkpoint_format, save_object
from hubkit.nn import Parameter
from hubkit.tensor import Tensor


def _has_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _round_trip(obj, tmp_path, name="ckpt.pt", **load_kwargs):
    path = tmp_path / name
    hubkit.save(obj, path)
    return hubkit.load(path, **load_kwargs)


def _assert_same(loaded, original, trail="obj"):
    """Structure, container types, scalar types and tensor values/dtypes equal; Tensors came back as Tensors."""
    if isinstance(original, Tensor | np.ndarray):
        assert type(loaded) in (Tensor, Parameter), f"{trail}: {type(loaded)}"
        expected = original.numpy() if isinstance(original, Tensor) else original
        assert loaded.dtype == expected.dtype and loaded.shape == expected.shape, trail
        np.testing.assert_array_equal(loaded.numpy(), expected, err_msg=trail)
        return
    assert type(loaded) is type(original), f"{trail}: {type(loaded).__name__} != {type(original).__name__}"
    if isinstance(original, dict):
        assert list(loaded) == list(original), trail
        for key in original:
            _assert_same(loaded[key], original[key], f"{trail}[{key!r}]")
    elif isinstance(original, list | tuple):
        assert len(loaded) == len(original), trail
        for i, (a, b) in enumerate(zip(loaded, original)):
            _assert_same(a, b, f"{trail}[{i}]")
    elif isinstance(original, float) and math.isnan(original):
        assert math.isnan(loaded), trail
    else:
        assert loaded == original, trail


# ---------------------------------------------------------------- round trips


def test_module_state_dict_round_trips_into_a_fresh_module(tmp_path):
    model = hubkit.nn.Sequential(hubkit.nn.Linear(3, 4), hubkit.nn.BatchNorm1d(4))
    model(hubkit.randn(5, 3))  # running stats and num_batches_tracked move away from their defaults
    loaded = _round_trip(model.state_dict(), tmp_path)
    assert type(loaded) is OrderedDict
    _assert_same(loaded, model.state_dict())
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    fresh = hubkit.nn.Sequential(hubkit.nn.Linear(3, 4), hubkit.nn.BatchNorm1d(4))
    fresh.load_state_dict(loaded)
    np.testing.assert_array_equal(fresh[0].weight.numpy(), model[0].weight.numpy())


def test_saving_a_module_writes_its_state_dict(tmp_path):
    model = hubkit.nn.Linear(2, 3)
    loaded = _round_trip(model, tmp_path)
    assert list(loaded) == ["weight", "bias"]
    np.testing.assert_array_equal(loaded["bias"].numpy(), model.bias.numpy())


def test_optimizer_state_dict_round_trips_and_loads_back(tmp_path):
    model = hubkit.nn.Linear(3, 2)
    opt = hubkit.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99))
    model(hubkit.randn(4, 3)).sum().backward()
    opt.step()
    state = opt.state_dict()
    loaded = _round_trip({"model": model.state_dict(), "optimizer": state, "epoch": 7}, tmp_path)
    _assert_same(loaded["optimizer"], state)
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.99)
    assert loaded["epoch"] == 7
    again = hubkit.optim.Adam(model.parameters(), lr=0.5)
    again.load_state_dict(loaded["optimizer"])
    assert again.param_groups[0]["lr"] == 0.01


def test_torch_shaped_optimizer_state_keeps_ints_tuples_and_tensors(tmp_path):
    state = {
        "state": {0: {"step": hubkit.tensor(3.0), "exp_avg": hubkit.randn(2, 3), "exp_avg_sq": hubkit.rand(2, 3)},
                  1: {"step": 3, "momentum_buffer": None}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                          "foreach": None, "maximize": False, "params": [0, 1]}],
    }
    loaded = _round_trip(state, tmp_path)
    _assert_same(loaded, state)
    assert list(loaded["state"]) == [0, 1] and loaded["state"][1]["step"] == 3


def test_nested_containers_and_scalars_keep_their_types(tmp_path):
    obj = {
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "list": [1, -7, 2**40, -(2**70), 3.5, float("inf"), float("nan"), True, False, None, "", "ünïcode ✓"],
        "tuple": (1, (2.0, "x"), [hubkit.ones(2)], ()),
        "empty": {"d": {}, "l": [], "od": OrderedDict()},
        "keys": {0: "int", 2.5: "float", None: "none", (1, "a"): "tuple", True: "bool"},
        "dtype": hubkit.float16,
        "tensors": [hubkit.zeros(0, 3), hubkit.tensor(5), np.arange(6, dtype=np.int16).reshape(2, 3)],
    }
    _assert_same(_round_trip(obj, tmp_path), obj)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                                   "uint16", "uint32", "uint64", "bool", "complex64", "complex128"])
def test_every_dtype_round_trips(tmp_path, dtype):
    array = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    loaded = _round_trip({"x": hubkit.from_numpy(array)}, tmp_path)["x"]
    assert loaded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.numpy(), array)


def test_strided_views_scalars_and_empty_tensors_round_trip(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    obj = {"t": base.T, "step": base[::2, 1::3], "scalar": np.array(2.5, np.float32),
           "empty": np.zeros((2, 0), np.float64), "fortran": np.asfortranarray(base)}
    loaded = _round_trip(obj, tmp_path)
    for key, value in obj.items():
        np.testing.assert_array_equal(loaded[key].numpy(), value)
        assert loaded[key].shape == value.shape


def test_shared_storage_stays_shared(tmp_path):
    weight = hubkit.randn(4, 3)
    obj = {"emb.weight": weight, "lm_head.weight": weight, "row": weight[1], "t": weight.T,
           "copy": weight.clone()}
    loaded = _round_trip(obj, tmp_path)
    assert loaded["lm_head.weight"] is loaded["emb.weight"]  # one Tensor saved twice is one Tensor again
    assert np.shares_memory(loaded["row"].numpy(), loaded["emb.weight"].numpy())
    assert np.shares_memory(loaded["t"].numpy(), loaded["emb.weight"].numpy())
    assert not np.shares_memory(loaded["copy"].numpy(), loaded["emb.weight"].numpy())
    loaded["emb.weight"].numpy()[1, 0] = 100.0
    assert loaded["row"].numpy()[0] == 100.0 and loaded["t"].numpy()[0, 1] == 100.0


def test_parameters_and_requires_grad_survive(tmp_path):
    p = Parameter(hubkit.ones(2, 2))
    frozen = Parameter(hubkit.ones(2), requires_grad=False)
    leaf = hubkit.zeros(3, requires_grad=True)
    loaded = _round_trip({"p": p, "frozen": frozen, "leaf": leaf, "plain": hubkit.zeros(1)}, tmp_path)
    assert type(loaded["p"]) is Parameter and loaded["p"].requires_grad
    assert type(loaded["frozen"]) is Parameter and not loaded["frozen"].requires_grad
    assert type(loaded["leaf"]) is Tensor and loaded["leaf"].requires_grad
    assert not loaded["plain"].requires_grad


def test_ndarrays_load_as_tensors_and_numpy_scalars_as_numbers(tmp_path):
    loaded = _round_trip({"a": np.ones(3, np.float32), "acc": np.float64(0.75), "n": np.int64(4),
                          "flag": np.bool_(True)}, tmp_path)
    assert type(loaded["a"]) is Tensor
    assert type(loaded["acc"]) is float and loaded["acc"] == 0.75
    assert type(loaded["n"]) is int and type(loaded["flag"]) is bool


def test_a_single_tensor_and_a_plain_list_are_valid_objects(tmp_path):
    loaded = _round_trip(hubkit.arange(5), tmp_path)
    assert type(loaded) is Tensor and loaded.tolist() == [0, 1, 2, 3, 4]
    assert _round_trip([1, "two", 3.0], tmp_path) == [1, "two", 3.0]


# ---------------------------------------------------------------- paths and file objects


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.bin", "model.ckpt", "checkpoint.pth.tar", "model"])
def test_torch_format_for_every_suffix_but_safetensors_and_npz(tmp_path, name):
    hubkit.save({"w": hubkit.ones(2)}, tmp_path / name)
    assert checkpoint_format(tmp_path / name) == "torch"
    assert hubkit.load(str(tmp_path / name))["w"].tolist() == [1.0, 1.0]


def test_str_and_path_objects_are_both_paths(tmp_path):
    hubkit.save({"x": 1}, str(tmp_path / "a.pt"))
    hubkit.save({"x": 2}, tmp_path / "b.pt")
    assert hubkit.load(tmp_path / "a.pt") == {"x": 1}
    assert hubkit.load(str(tmp_path / "b.pt")) == {"x": 2}


def test_file_objects_are_written_and_read(tmp_path):
    buffer = io.BytesIO()
    hubkit.save({"w": hubkit.arange(3), "tag": "x"}, buffer)
    buffer.seek(0)
    loaded = hubkit.load(buffer)
    assert loaded["w"].tolist() == [0, 1, 2] and loaded["tag"] == "x"
    with open(tmp_path / "f.pt", "wb") as f:
        hubkit.save([hubkit.ones(2)], f)
    with open(tmp_path / "f.pt", "rb") as f:
        assert hubkit.load(f)[0].tolist() == [1.0, 1.0]


def test_file_object_positions_are_respected_on_both_sides():
    buffer = io.BytesIO()
    buffer.write(b"HEADER")
    hubkit.save({"w": hubkit.ones(2)}, buffer)  # mid-stream: offsets count from where the archive starts
    buffer.seek(6)
    assert hubkit.load(buffer)["w"].tolist() == [1.0, 1.0]


def test_a_write_only_stream_gets_the_whole_archive():
    class Sink:
        def __init__(self):
            self.chunks = []

        def write(self, data):
            self.chunks.append(bytes(data))
            return len(data)

    sink = Sink()
    hubkit.save({"w": hubkit.ones(3)}, sink)
    assert hubkit.load(io.BytesIO(b"".join(sink.chunks)))["w"].tolist() == [1.0, 1.0, 1.0]


def test_a_failed_save_leaves_the_previous_file_and_no_temp_files(tmp_path):
    path = tmp_path / "ckpt.pt"
    hubkit.save({"epoch": 1}, path)
    with pytest.raises(CheckpointError, match=r"\['bad'\]"):
        hubkit.save({"epoch": 2, "bad": {1, 2}}, path)
    assert hubkit.load(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_text_mode_file_objects_are_refused(tmp_path):
    hubkit.save({"x": 1}, tmp_path / "a.pt")
    with open(tmp_path / "a.pt", encoding="latin-1") as f, pytest.raises(ArgumentTypeError, match="binary mode"):
        hubkit.load(f)
    with open(tmp_path / "b.pt", "w") as f, pytest.raises(ArgumentTypeError, match="text-mode"):
        hubkit.save({"x": 1}, f)
    with pytest.raises(ArgumentTypeError, match="path.*file object.*int"):
        hubkit.save({"x": 1}, 3)


# ---------------------------------------------------------------- what cannot be saved, and flat formats


class _Config:
    pass


@pytest.mark.parametrize("value, fragment", [
    ({1, 2}, "set"), (_Config(), "_Config"), (b"raw", "bytes"), (1 + 2j, "complex"),
    (hubkit.nn.Linear(1, 1), "state_dict"),
])
def test_objects_torch_weights_only_cannot_read_are_refused_by_path(tmp_path, value, fragment):
    with pytest.raises(CheckpointError, match=rf"\['run'\]\[0\].*{fragment}"):
        hubkit.save({"run": [value]}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_dict_keys_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="key"):
        hubkit.save({hubkit.nn.Linear: 1}, tmp_path / "x.pt")


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_flat_formats_round_trip_state_dicts_and_refuse_nested_objects(tmp_path, suffix):
    model = hubkit.nn.Linear(2, 2)
    hubkit.save(model, tmp_path / f"m{suffix}")
    loaded = hubkit.load(tmp_path / f"m{suffix}")
    assert set(loaded) == {"weight", "bias"} and type(loaded["weight"]) is Tensor
    np.testing.assert_array_equal(loaded["weight"].numpy(), model.weight.numpy())
    with pytest.raises(CheckpointError, match=r"'optimizer'.*flat.*\.pt"):
        hubkit.save({"model": hubkit.ones(1), "optimizer": {"state": {}}}, tmp_path / f"n{suffix}")
    with pytest.raises(CheckpointError, match="flat.*list"):
        hubkit.save([hubkit.ones(1)], tmp_path / f"l{suffix}")


def test_explicit_format_overrides_the_suffix_and_file_objects_take_it(tmp_path):
    hubkit.save({"w": hubkit.ones(2)}, tmp_path / "w.pt", format="safetensors")
    assert checkpoint_format(tmp_path / "w.pt") == "safetensors"
    buffer = io.BytesIO()
    hubkit.save({"w": hubkit.ones(2)}, buffer, format="npz")
    buffer.seek(0)
    assert hubkit.load(buffer)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(CheckpointError, match="format="):
        hubkit.save({}, tmp_path / "x.pt", format="pickle")


# ---------------------------------------------------------------- map_location, mmap, weights_only


def _cuda_file(path: Path) -> Path:
    """A checkpoint whose tensors torch would restore on cuda:0 (written without a GPU)."""
    shared = np.arange(6, dtype=np.float32)
    data = TensorData(shared, location="cuda:0")
    save_object({"a": data, "b": TensorData(shared[2:], location="cuda:0"), "c": TensorData(np.ones(2), "cpu")},
                path)
    return path


@pytest.mark.parametrize("where", ["cpu", hubkit.device("cpu"), {"cuda:0": "cpu"}])
def test_map_location_to_the_cpu_as_a_string_device_or_dict(tmp_path, where):
    loaded = hubkit.load(_cuda_file(tmp_path / "c.pt"), map_location=where)
    assert all(t.device == "cpu" for t in loaded.values())
    assert hubkit.load(tmp_path / "c.pt", where)["a"].device == "cpu"  # positional, as torch.load allows
    assert loaded["b"].tolist() == [2, 3, 4, 5]
    assert np.shares_memory(loaded["a"].numpy(), loaded["b"].numpy())


def test_map_location_callable_gets_each_storage_once_with_its_location(tmp_path):
    calls = []

    def keep_on_cpu(storage, location):
        calls.append((type(storage), storage.dtype, location))
        return storage

    loaded = hubkit.load(_cuda_file(tmp_path / "c.pt"), map_location=keep_on_cpu)
    assert sorted(calls, key=str) == [(Tensor, np.uint8, "cpu"), (Tensor, np.uint8, "cuda:0")]
    assert loaded["a"].device == "cpu" and loaded["c"].tolist() == [1.0, 1.0]


def test_map_location_callable_returning_none_means_the_saved_location(tmp_path):
    hubkit.save({"w": hubkit.ones(2)}, tmp_path / "w.pt")
    assert hubkit.load(tmp_path / "w.pt", map_location=lambda storage, location: None)["w"].device == "cpu"
    with pytest.raises(ArgumentTypeError, match="returned a str"):
        hubkit.load(tmp_path / "w.pt", map_location=lambda storage, location: "cpu")


@pytest.mark.skipif(_has_gpu(), reason="checks the message on a machine without a GPU")
def test_cuda_tensors_without_a_gpu_say_to_use_map_location(tmp_path):
    with pytest.raises(DeviceError, match="map_location='cpu'"):
        hubkit.load(_cuda_file(tmp_path / "c.pt"))


def test_bad_map_locations_name_what_is_accepted(tmp_path):
    hubkit.save({"w": hubkit.ones(2)}, tmp_path / "w.pt")
    with pytest.raises(DeviceError, match="'cpu', 'cuda'"):
        hubkit.load(tmp_path / "w.pt", map_location="gpu")
    with pytest.raises(ArgumentTypeError, match="map_location"):
        hubkit.load(tmp_path / "w.pt", map_location=3.5)
    with pytest.raises(ArgumentTypeError, match="map_location dict"):
        hubkit.load(tmp_path / "w.pt", map_location={0: "cpu"})


def test_mmap_maps_the_file_copy_on_write(tmp_path):
    hubkit.save({"w": hubkit.zeros(4)}, tmp_path / "w.pt")
    before = (tmp_path / "w.pt").read_bytes()
    loaded = hubkit.load(tmp_path / "w.pt", mmap=True)
    loaded["w"].numpy()[:] = 9.0
    assert (tmp_path / "w.pt").read_bytes() == before
    assert hubkit.load(tmp_path / "w.pt")["w"].tolist() == [0.0] * 4
    with pytest.raises(ArgumentError, match="mmap=True needs a file path"):
        hubkit.load(io.BytesIO(before), mmap=True)


def test_loaded_tensors_are_writable_and_independent_of_the_file(tmp_path):
    hubkit.save({"w": hubkit.zeros(3)}, tmp_path / "w.pt")
    loaded = hubkit.load(tmp_path / "w.pt")
    (tmp_path / "w.pt").unlink()
    loaded["w"].add_(1.0)
    assert loaded["w"].tolist() == [1.0, 1.0, 1.0]


def test_weights_only_false_is_refused_and_true_is_accepted(tmp_path):
    hubkit.save({"w": hubkit.ones(1)}, tmp_path / "w.pt")
    assert hubkit.load(tmp_path / "w.pt", weights_only=True)["w"].tolist() == [1.0]
    with pytest.raises(ArgumentError, match="never unpickles.*drop weights_only=False"):
        hubkit.load(tmp_path / "w.pt", weights_only=False)


# ---------------------------------------------------------------- the name-vs-file rule


def test_an_existing_file_wins_over_a_model_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hubkit.save({"epoch": 4}, "lenet5")  # a file named like a registered model, no suffix
    assert hubkit.load("lenet5") == {"epoch": 4}
    with pytest.raises(ArgumentError, match="shadows the model 'lenet5'"):
        hubkit.load("lenet5", num_classes=3)


@pytest.mark.parametrize("name", ["missing.pt", "missing.PTH", "model.safetensors", "weights.npz", "run.ckpt",
                                  "last.bin", "runs/exp1/last", "resnet18.pth"])
def test_a_missing_path_like_str_is_a_missing_file_not_an_unknown_model(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="no such file") as err:
        hubkit.load(name)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, HubkitError)
    assert "No model named" not in str(err.value)


def test_a_missing_path_object_is_a_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no such file"):
        hubkit.load(tmp_path / "lenet5")


def test_a_directory_path_is_named_as_such(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(CheckpointError, match="directory"):
        hubkit.load(str(tmp_path / "runs"))


def test_model_names_keep_their_meaning():
    model = hubkit.load("lenet5", num_classes=7)
    assert type(model).__name__ == "LeNet5" and model.training
    with pytest.raises(hubkit.errors.ModelNotFoundError, match="No model named"):
        hubkit.load("resnet5")


def test_file_arguments_with_a_model_name_are_refused():
    with pytest.raises(ArgumentError, match="map_location=.*model name.*device="):
        hubkit.load("lenet5", map_location="cpu")
    with pytest.raises(ArgumentError, match="weights_only=, mmap= are for checkpoint files"):
        hubkit.load("lenet5", weights_only=True, mmap=True)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"pretrained": True}, "pretrained="), ({"weights": "DEFAULT"}, "weights="), ({"num_classes": 3}, "num_classes="),
    ({"device": "cpu"}, "use map_location="), ({"pickle_module": object()}, "pickle_module= and pickle arguments"),
])
def test_model_arguments_with_a_file_are_refused(tmp_path, kwargs, fragment):
    hubkit.save({"w": hubkit.ones(1)}, tmp_path / "w.pt")
    with pytest.raises(ArgumentError, match=fragment):
        hubkit.load(tmp_path / "w.pt", **kwargs)


def test_file_objects_are_files_and_other_types_are_refused():
    buffer = io.BytesIO()
    hubkit.save({"x": 1}, buffer)
    assert hubkit.load(io.BytesIO(buffer.getvalue())) == {"x": 1}
    with pytest.raises(ArgumentTypeError, match="model name.*file path.*file object"):
        hubkit.load(42)


# ---------------------------------------------------------------- files from elsewhere, and safety


def test_torch_fixture_files_load_whole(tmp_path):
    expected = np.load(FIXTURES / "expected.npz")
    for name in ("zip.pth", "legacy.pth", "legacy.tar", "big_endian.pth"):
        loaded = hubkit.load(FIXTURES / name)
        assert isinstance(loaded, dict) and all(isinstance(v, Tensor) for v in loaded.values()), name
        for key, value in loaded.items():
            if key in expected:
                np.testing.assert_array_equal(value.numpy(), expected[key], err_msg=f"{name}: {key}")
    nested = hubkit.load(FIXTURES / "nested.pth")
    assert "model" in nested and type(nested["model"]["0.weight"]) is Tensor


def test_a_malicious_global_is_refused_through_hubkit_load(tmp_path):
    canary = tmp_path / "canary"
    payload = call("builtins", "exec", s(f"open({str(canary)!r}, 'w').write('ran')"))
    path = torch_zip(tmp_path / "evil.pt", state_pickle({"w": tensor("0", 1, (1,), (1,)), "x": payload}),
                     {"0": np.ones(1, np.float32).tobytes()})
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec") as err:
        hubkit.load(path)
    assert err.value.global_name == "builtins.exec"
    with pytest.raises(UnsafeCheckpointError), open(path, "rb") as f:
        hubkit.load(f)
    assert not canary.exists()


def test_a_bare_pickle_is_not_unpickled(tmp_path):
    import pickle

    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="does not unpickle arbitrary objects"):
        hubkit.load(tmp_path / "plain.pkl")


# ---------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_cuda_tensors_round_trip_with_their_device_and_shared_storage(tmp_path):
    weight = hubkit.randn(4, 3, device="cuda")
    hubkit.save({"w": weight, "row": weight[1], "tied": weight, "cpu": hubkit.ones(2)}, tmp_path / "g.pt")
    loaded = hubkit.load(tmp_path / "g.pt")
    assert loaded["w"].device == "cuda:0" and loaded["cpu"].device == "cpu"
    assert loaded["tied"] is loaded["w"]
    np.testing.assert_array_equal(loaded["w"].cpu().numpy(), weight.cpu().numpy())
    loaded["w"].array[1, 0] = 42.0
    assert float(loaded["row"].array[0]) == 42.0  # the view still shares the storage on the GPU
    on_cpu = hubkit.load(tmp_path / "g.pt", map_location="cpu")
    assert on_cpu["w"].device == "cpu" and np.shares_memory(on_cpu["w"].numpy(), on_cpu["row"].numpy())
    moved = hubkit.load(tmp_path / "g.pt", map_location=lambda storage, location: storage.cuda(0))
    assert moved["cpu"].device == "cuda:0"


# ---------------------------------------------------------------- parity with torch


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _assert_torch_same(torch_obj, hub_obj, torch, trail="obj"):
    """A torch.load result equals a hubkit object: containers, scalars, tensor dtypes and values."""
    if isinstance(hub_obj, Tensor):
        assert isinstance(torch_obj, torch.Tensor), trail
        assert str(torch_obj.dtype).removeprefix("torch.") == str(hub_obj.dtype), trail
        np.testing.assert_array_equal(torch_obj.detach().numpy(), hub_obj.numpy(), err_msg=trail)
        assert isinstance(torch_obj, torch.nn.Parameter) == isinstance(hub_obj, Parameter), trail
        assert torch_obj.requires_grad == hub_obj.requires_grad, trail
        return
    if isinstance(hub_obj, np.dtype):
        assert torch_obj == getattr(torch, str(hub_obj)), trail
        return
    assert type(torch_obj) is type(hub_obj), f"{trail}: {type(torch_obj).__name__} != {type(hub_obj).__name__}"
    if isinstance(hub_obj, dict):
        assert list(torch_obj) == list(hub_obj), trail
        for key in hub_obj:
            _assert_torch_same(torch_obj[key], hub_obj[key], torch, f"{trail}[{key!r}]")
    elif isinstance(hub_obj, list | tuple):
        assert len(torch_obj) == len(hub_obj), trail
        for i, (a, b) in enumerate(zip(torch_obj, hub_obj)):
            _assert_torch_same(a, b, torch, f"{trail}[{i}]")
    elif isinstance(hub_obj, float) and math.isnan(hub_obj):
        assert math.isnan(torch_obj), trail
    else:
        assert torch_obj == hub_obj, trail


def _torch_adam_checkpoint(torch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.8, 0.95), weight_decay=0.01)
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    return net, opt


def _check_torch_checkpoint_loads(ckpt, loaded, torch):
    assert type(loaded["model"]) is OrderedDict and list(loaded["model"]) == list(ckpt["model"])
    for key, value in ckpt["model"].items():
        assert str(value.dtype).removeprefix("torch.") == str(loaded["model"][key].dtype)
        np.testing.assert_array_equal(loaded["model"][key].numpy(), value.numpy())
    torch_groups = ckpt["optimizer"]["param_groups"]
    assert loaded["optimizer"]["param_groups"] == torch_groups
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.95)
    assert list(loaded["optimizer"]["state"]) == list(ckpt["optimizer"]["state"])
    for index, state in ckpt["optimizer"]["state"].items():
        for name, value in state.items():
            got = loaded["optimizer"]["state"][index][name]
            assert type(got) is Tensor and got.dtype == np.float32
            np.testing.assert_array_equal(got.numpy(), value.numpy())
    assert loaded["epoch"] == 5 and loaded["shape"] == (2, 3) and loaded["names"] == ["a", ("b", None)]


@pytest.mark.parity
@pytest.mark.parametrize("zipfile_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_of_a_training_checkpoint_loads_in_hubkit(torch, tmp_path, zipfile_format):
    net, opt = _torch_adam_checkpoint(torch)
    ckpt = {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 5, "shape": torch.Size([2, 3]),
            "names": ["a", ("b", None)]}
    torch.save(ckpt, tmp_path / "t.pt", _use_new_zipfile_serialization=zipfile_format)
    assert checkpoint_format(tmp_path / "t.pt") == ("torch" if zipfile_format else "torch-legacy")
    loaded = hubkit.load(tmp_path / "t.pt", map_location="cpu")
    _check_torch_checkpoint_loads(ckpt, loaded, torch)
    model = hubkit.nn.Sequential(hubkit.nn.Linear(3, 4), hubkit.nn.BatchNorm1d(4), hubkit.nn.Linear(4, 2))
    model.load_state_dict(loaded["model"])
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    net.eval()
    model.eval()
    np.testing.assert_allclose(model(hubkit.from_numpy(x)).numpy(), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parity
def test_torch_adam_state_dict_loads_into_hubkit_adam(torch, tmp_path):
    net, opt = _torch_adam_checkpoint(torch)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    model = hubkit.nn.Sequential(hubkit.nn.Linear(3, 4), hubkit.nn.BatchNorm1d(4), hubkit.nn.Linear(4, 2))
    hub_opt = hubkit.optim.Adam(model.parameters(), lr=0.5)
    hub_opt.load_state_dict(hubkit.load(tmp_path / "opt.pt"))
    assert hub_opt.param_groups[0]["lr"] == 1e-3 and hub_opt.param_groups[0]["betas"] == (0.8, 0.95)


@pytest.mark.parity
def test_torch_shared_storages_parameters_and_file_objects_load_in_hubkit(torch):
    weight = torch.randn(4, 3)
    obj = {"w": weight, "tied": weight, "row": weight[2], "t": weight.t(),
           "p": torch.nn.Parameter(torch.ones(2)), "g": torch.zeros(2, requires_grad=True),
           "frozen": torch.nn.Parameter(torch.ones(1), requires_grad=False), "i": torch.arange(3, dtype=torch.int8)}
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    loaded = hubkit.load(buffer)
    assert loaded["tied"] is loaded["w"]
    assert np.shares_memory(loaded["row"].numpy(), loaded["w"].numpy())
    np.testing.assert_array_equal(loaded["t"].numpy(), weight.t().numpy())
    assert type(loaded["p"]) is Parameter and loaded["p"].requires_grad
    assert type(loaded["frozen"]) is Parameter and not loaded["frozen"].requires_grad
    assert type(loaded["g"]) is Tensor and loaded["g"].requires_grad
    assert loaded["i"].dtype == np.int8


@pytest.mark.parity
def test_hubkit_save_is_read_by_torch_load_weights_only(torch, tmp_path):
    weight = hubkit.randn(4, 3)
    obj = {
        "model": OrderedDict([("fc.weight", weight), ("fc.bias", hubkit.zeros(4)),
                              ("head.weight", weight), ("bn.num_batches_tracked", hubkit.tensor(3))]),
        "optimizer": {"state": {0: {"step": hubkit.tensor(2.0), "exp_avg": hubkit.ones(4, 3)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "foreach": None, "params": [0]}]},
        "views": [weight[1], weight.T],
        "misc": (1, -2**40, 2.5, float("nan"), True, None, "ü", hubkit.float16),
        "p": Parameter(hubkit.ones(2)), "g": hubkit.zeros(2, requires_grad=True),
        "dtypes": [hubkit.from_numpy(np.arange(3).astype(d)) for d in ("uint16", "uint32", "uint64", "bool",
                                                                      "complex64", "float16", "int8")],
    }
    hubkit.save(obj, tmp_path / "h.pt")
    back = torch.load(tmp_path / "h.pt", weights_only=True)
    _assert_torch_same(back, obj, torch)
    shared = back["model"]["fc.weight"].untyped_storage().data_ptr()
    assert back["model"]["head.weight"] is back["model"]["fc.weight"]
    assert back["views"][0].untyped_storage().data_ptr() == shared
    assert back["views"][1].untyped_storage().data_ptr() == shared


@pytest.mark.parity
def test_hubkit_save_to_a_file_object_is_read_by_torch(torch):
    buffer = io.BytesIO()
    model = hubkit.nn.Linear(3, 2)
    hubkit.save(model, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert type(state) is OrderedDict and list(state) == ["weight", "bias"]
    net = torch.nn.Linear(3, 2)
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.weight.detach().numpy(), model.weight.numpy())


@pytest.mark.parity
def test_torch_reads_the_device_hubkit_records(torch, tmp_path):
    path = _cuda_file(tmp_path / "c.pt")
    back = torch.load(path, weights_only=True, map_location="cpu")
    assert back["b"].tolist() == [2, 3, 4, 5]
    assert back["a"].untyped_storage().data_ptr() == back["b"].untyped_storage().data_ptr()
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
