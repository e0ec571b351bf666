"""hub.formats against live PyTorch: torch writes, hubkit reads; hubkit writes, torch reads (weights_only)."""

from __future__ import annotations

import numpy as np
import pytest
from checkpoint_builders import FIXTURES

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _np(t) -> np.ndarray:
    t = t.detach().resolve_conj().resolve_neg()
    import torch

    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def _assert_same(state: dict, reference: dict) -> None:
    assert list(state) == list(reference)
    for name, t in reference.items():
        expected = _np(t)
        assert state[name].dtype == expected.dtype, name
        assert state[name].shape == expected.shape, name
        np.testing.assert_array_equal(state[name], expected, err_msg=name)


def _fixture_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("legacy", [False, True])
def test_live_torch_save_reads_back_exactly(torch, tmp_path, legacy):
    make = _fixture_module()
    state = make.legacy_state() if legacy else make.mixed_state()
    torch.save(state, tmp_path / "s.pth", _use_new_zipfile_serialization=not legacy)
    from hubkit.hub.checkpoint.formats import load_checkpoint

    for mmap in (True, False):
        _assert_same(load_checkpoint(tmp_path / "s.pth", mmap=mmap), state)


def test_committed_legacy_tar_is_what_torch_reads(torch):
    from hubkit.hub.checkpoint.formats import load_checkpoint

    reference = torch.load(FIXTURES / "legacy.tar", weights_only=False)  # our own fixture: trusted
    _assert_same(load_checkpoint(FIXTURES / "legacy.tar"), reference)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_higher_pickle_protocols_are_read(torch, tmp_path, protocol):
    state = {"w": torch.randn(3, 2), "n": torch.tensor(4)}
    torch.save(state, tmp_path / "p.pth", pickle_protocol=protocol)
    from hubkit.hub.checkpoint.formats import load_checkpoint

    _assert_same(load_checkpoint(tmp_path / "p.pth"), state)


@pytest.mark.parametrize("legacy", [False, True])
def test_torchvision_resnet18_state_dict(torch, tmp_path, legacy):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.train()
    model(torch.randn(2, 3, 64, 64))  # moves running stats and num_batches_tracked off their defaults
    state = model.state_dict()
    torch.save(state, tmp_path / "r18.pth", _use_new_zipfile_serialization=not legacy)
    from hubkit.hub.checkpoint.formats import load_checkpoint

    loaded = load_checkpoint(tmp_path / "r18.pth")
    assert len(loaded) == 122
    assert loaded["layer1.0.bn1.num_batches_tracked"].dtype == np.int64
    _assert_same(loaded, state)


def test_torch_safetensors_with_bfloat16_is_read(torch, tmp_path):
    from safetensors.torch import save_file

    state = {"bf": torch.randn(3, 4).bfloat16(), "f": torch.randn(2), "i": torch.arange(3)}
    save_file(state, tmp_path / "t.safetensors")
    from hubkit.hub.checkpoint.formats import load_checkpoint

    loaded = load_checkpoint(tmp_path / "t.safetensors")
    for name, t in state.items():
        np.testing.assert_array_equal(loaded[name], _np(t), err_msg=name)


def _hubkit_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((5, 4)).astype(np.float32)
    state = {
        "f32": base, "f32.t": base.T, "f32.rows": base[1:4], "f64": rng.standard_normal(3),
        "f16": rng.standard_normal((2, 2)).astype(np.float16), "i8": np.array([-3, 4], np.int8),
        "i16": np.array([7], np.int16), "i32": np.array([[-1]], np.int32), "i64": np.array([2**40], np.int64),
        "u8": np.array([250], np.uint8), "u16": np.array([65000], np.uint16), "u32": np.array([2**31], np.uint32),
        "u64": np.array([2**60], np.uint64), "bool": np.array([True, False]), "c64": np.array([1j], np.complex64),
        "c128": np.array([2 - 1j]), "scalar": np.array(1.5, np.float32), "empty": np.zeros((0, 2), np.float32),
        "expanded": np.broadcast_to(np.arange(3, dtype=np.float32), (2, 3)),
    }
    state["tied"] = state["f32"]
    return state


def test_hubkit_torch_writer_loads_with_weights_only(torch, tmp_path):
    from hubkit.hub.checkpoint.formats import save_checkpoint

    state = _hubkit_state()
    save_checkpoint(state, tmp_path / "h.pth", format="torch")
    loaded = torch.load(tmp_path / "h.pth", weights_only=True)
    assert list(loaded) == list(state)
    for name, array in state.items():
        t = loaded[name]
        assert t.shape == array.shape, name
        np.testing.assert_array_equal(t.numpy(), array, err_msg=name)
    ptr = loaded["f32"].untyped_storage().data_ptr()
    for view in ("f32.t", "f32.rows", "tied"):
        assert loaded[view].untyped_storage().data_ptr() == ptr, view
    assert loaded["f32.t"].stride() == (1, 4)


def test_hubkit_save_then_torch_load_weights_only(torch, tmp_path):
    import hubkit
    from hubkit.tensor import from_numpy

    weight = np.arange(12, dtype=np.float32).reshape(3, 4)

    class Net:
        def state_dict(self):
            return {"fc.weight": from_numpy(weight), "fc.bias": from_numpy(np.ones(3, np.float32)),
                    "bn.num_batches_tracked": from_numpy(np.array(2, np.int64))}

    hubkit.save(Net(), tmp_path / "net.pth")
    loaded = torch.load(tmp_path / "net.pth", weights_only=True)
    np.testing.assert_array_equal(loaded["fc.weight"].numpy(), weight)
    assert loaded["bn.num_batches_tracked"].dtype == torch.int64
    reference = torch.nn.Linear(4, 3)
    reference.load_state_dict({k[3:]: v for k, v in loaded.items() if k.startswith("fc.")})


def test_hubkit_nn_module_round_trips_through_torch(torch, tmp_path):
    nn = pytest.importorskip("hubkit.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("hubkit.nn.Linear is not available yet")
    import hubkit

    layer = nn.Linear(4, 3)
    hubkit.save(layer, tmp_path / "lin.pth")
    loaded = torch.load(tmp_path / "lin.pth", weights_only=True)
    reference = torch.nn.Linear(4, 3)
    reference.load_state_dict(loaded)
    np.testing.assert_array_equal(reference.weight.detach().numpy(), layer.state_dict()["weight"].numpy())
