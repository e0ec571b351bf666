"""hubkit.save / hubkit.load_state: modules, tensors, device arrays, format from the suffix."""

from __future__ import annotations

import numpy as np
import pytest
from checkpoint_builders import FIXTURES

import hubkit
from hubkit.errors import CheckpointError
from hubkit.hub.checkpoint.formats import checkpoint_format, load_checkpoint
from hubkit.hub.checkpoint.state import load_state, save


class _FakeDeviceArray:
    """Duck-types a cupy array: ``__cuda_array_interface__`` and ``.get()`` to the host."""

    def __init__(self, host: np.ndarray) -> None:
        self._host = host
        self.copies = 0
        self.__cuda_array_interface__ = {"shape": host.shape, "typestr": host.dtype.str, "version": 3}

    def get(self) -> np.ndarray:
        self.copies += 1
        return self._host.copy()


class _ModuleLike:
    def __init__(self, state: dict) -> None:
        self._state = state

    def state_dict(self) -> dict:
        return dict(self._state)


def _tensor(array: np.ndarray):
    from hubkit.tensor import from_numpy

    return from_numpy(array)


def test_top_level_names_resolve_to_the_state_module():
    assert hubkit.save is save and hubkit.load_state is load_state
    assert hubkit.hub.load_checkpoint is load_checkpoint


@pytest.mark.parametrize("suffix, fmt", [(".safetensors", "safetensors"), (".pth", "torch"), (".pt", "torch"),
                                         (".bin", "torch"), (".npz", "npz"), (".PTH", "torch")])
def test_format_follows_the_suffix(tmp_path, suffix, fmt):
    path = tmp_path / f"model{suffix}"
    save({"w": np.ones((2, 2), np.float32)}, path)
    assert checkpoint_format(path) == fmt


def test_explicit_format_overrides_the_suffix(tmp_path):
    save({"w": np.ones(2, np.float32)}, tmp_path / "model.pth", format="npz")
    assert checkpoint_format(tmp_path / "model.pth") == "npz"


def test_other_suffixes_mean_torch_format_as_with_torch_save(tmp_path):
    save({"w": np.ones(2)}, tmp_path / "model.ckpt")
    assert checkpoint_format(tmp_path / "model.ckpt") == "torch"


def test_module_with_state_dict_of_tensors_round_trips(tmp_path):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    module = _ModuleLike({"fc.weight": _tensor(weight), "fc.bias": _tensor(np.zeros(2, np.float32)),
                          "bn.num_batches_tracked": _tensor(np.array(5, np.int64))})
    save(module, tmp_path / "m.safetensors")
    state = load_state(tmp_path / "m.safetensors")
    assert set(state) == set(module.state_dict())
    np.testing.assert_array_equal(state["fc.weight"].numpy(), weight)
    assert state["bn.num_batches_tracked"].numpy().dtype == np.int64
    assert type(state["fc.weight"]).__name__ == "Tensor"


def test_load_state_wraps_mapped_arrays_without_copying(tmp_path):
    save({"w": np.arange(4, dtype=np.float32)}, tmp_path / "w.pth")
    state = load_state(tmp_path / "w.pth", mmap=True)
    raw = load_checkpoint(tmp_path / "w.pth", mmap=True)["w"]
    assert state["w"].numpy().base is not None
    np.testing.assert_array_equal(state["w"].numpy(), raw)


def test_load_state_unwraps_nested_checkpoints():
    state = load_state(FIXTURES / "nested.pth", key="model")
    assert "0.weight" in state and "1.running_var" in state


def test_device_arrays_are_copied_to_host_once_so_tied_weights_stay_tied(tmp_path):
    shared = _FakeDeviceArray(np.arange(6, dtype=np.float32))
    other = _FakeDeviceArray(np.ones(2, np.float16))
    save({"emb.weight": shared, "lm_head.weight": shared, "b": other}, tmp_path / "d.pth")
    assert shared.copies == 1
    back = load_checkpoint(tmp_path / "d.pth")
    assert np.shares_memory(back["emb.weight"], back["lm_head.weight"])
    np.testing.assert_array_equal(back["lm_head.weight"], np.arange(6, dtype=np.float32))
    assert back["b"].dtype == np.float16


def test_tensor_holding_a_device_array_in_array_is_copied_to_host(tmp_path):
    class DeviceTensor:
        def __init__(self, data):
            self.array = data

    save({"w": DeviceTensor(_FakeDeviceArray(np.full(3, 7, np.int32)))}, tmp_path / "t.npz")
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "t.npz")["w"], [7, 7, 7])


def test_numpy_scalars_and_python_numbers_become_0d_arrays(tmp_path):
    save({"a": np.float32(1.5), "n": 3}, tmp_path / "s.npz")
    back = load_checkpoint(tmp_path / "s.npz")
    assert back["a"].shape == () and back["a"].dtype == np.float32
    assert back["n"] == 3


def test_values_that_are_not_tensors_are_named_in_the_error(tmp_path):
    with pytest.raises(CheckpointError, match="'config'.*str"):
        save({"w": np.ones(1), "config": "resnet"}, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="flat.*mapping.*list"):
        save([np.ones(1)], tmp_path / "x.npz")
