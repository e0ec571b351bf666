"""The namespaces PyTorch code reaches for: hubkit.utils.data, hubkit.utils.make_grid/save_image,
hubkit.cuda, hubkit.accelerator, hubkit.backends, and devices spelled as torch spells them."""

import importlib
import io
import struct
import zlib

import numpy as np
import pytest

import hubkit
from hubkit import _backend
from hubkit.errors import DeviceError


def test_utils_data_is_hubkit_data():
    from hubkit.utils.data import DataLoader, TensorDataset, random_split

    assert DataLoader is hubkit.data.DataLoader and TensorDataset is hubkit.data.TensorDataset
    assert random_split is hubkit.data.random_split
    assert importlib.import_module("hubkit.utils.data").Dataset is hubkit.data.Dataset
    assert hubkit.utils.data.DataLoader is DataLoader


def test_cuda_queries_without_a_gpu(monkeypatch):
    monkeypatch.setattr(_backend, "cupy_module", _no_cupy)
    monkeypatch.setattr(hubkit.cuda, "cupy_module", _no_cupy)
    assert hubkit.cuda.is_available() is False
    assert hubkit.cuda.device_count() == 0
    assert hubkit.cuda.memory_allocated() == 0
    hubkit.cuda.manual_seed(1)
    hubkit.cuda.manual_seed_all(1)
    with pytest.raises(DeviceError, match="cupy"):
        hubkit.cuda.current_device()
    with pytest.raises(DeviceError, match="cupy"):
        hubkit.cuda.synchronize()
    assert hubkit.accelerator.is_available() is False
    assert hubkit.accelerator.current_accelerator() is None
    assert hubkit.backends.mps.is_available() is False
    # cuDNN is available where NVIDIA's wheel is installed (torch brings it), GPU or not
    assert hubkit.backends.cudnn.is_available() is (hubkit.backends.cudnn.version() is not None)
    hubkit.backends.cudnn.benchmark = True  # scripts set it; nothing breaks
    hubkit.backends.cudnn.benchmark = False


def _no_cupy():
    raise DeviceError("a CUDA device was requested but cupy is not installed")


def test_the_usual_device_selection_line_works_on_a_cpu_machine():
    use_cuda = hubkit.cuda.is_available()
    device = hubkit.device("cuda" if use_cuda else "cpu")
    model = hubkit.nn.Linear(2, 1).to(device)
    assert model(hubkit.ones(3, 2).to(device)).shape == (3, 1)
    acc = hubkit.accelerator.current_accelerator() if hubkit.accelerator.is_available() else hubkit.device("cpu")
    assert hubkit.ones(1).to(acc).device.type in ("cpu", "cuda")


@pytest.mark.parametrize(("spec", "message"), [
    ("gpu", "an NVIDIA GPU is 'cuda'"),
    ("mps", "no Apple Metal"),
    ("xla", "CPUs and NVIDIA GPUs only"),
    ("cuda:x", "expected 'cpu', 'cuda' or 'cuda:N'"),
])
def test_unknown_devices_name_the_valid_ones(spec, message):
    with pytest.raises(DeviceError, match=message):
        hubkit.zeros(2).to(spec)
    with pytest.raises(DeviceError, match=message):
        hubkit.zeros(2, device=spec)
    with pytest.raises(DeviceError, match=message):
        hubkit.nn.Linear(1, 1).to(spec)


def test_device_objects_as_torch_spells_them():
    assert str(hubkit.device("cuda", 0)) == "cuda:0" and str(hubkit.device(1)) == "cuda:1"
    assert hubkit.device("cpu") == "cpu" and hubkit.device("cuda:2").index == 2


# ---------------------------------------------------------------- make_grid / save_image


def test_make_grid_layout_and_padding():
    images = hubkit.stack([hubkit.full((1, 2, 3), float(i)) for i in range(5)])
    grid = hubkit.utils.make_grid(images, nrow=2, padding=1, pad_value=-1.0)
    assert grid.shape == (3, 3 * 3 + 1, 2 * 4 + 1)
    g = grid.numpy()
    np.testing.assert_array_equal(g[:, 1:3, 1:4], 0.0)
    np.testing.assert_array_equal(g[:, 1:3, 5:8], 1.0)
    np.testing.assert_array_equal(g[:, 7:9, 1:4], 4.0)
    np.testing.assert_array_equal(g[:, 7:9, 5:8], -1.0)  # the empty sixth cell
    np.testing.assert_array_equal(g[:, 0, :], -1.0)


def test_make_grid_normalize_range_and_single_image():
    images = hubkit.tensor(np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2))
    grid = hubkit.utils.make_grid(images, normalize=True, padding=0)
    assert float(grid.min()) == 0.0 and float(grid.max()) == 1.0
    one = hubkit.utils.make_grid(hubkit.ones(1, 4, 5))
    assert one.shape == (3, 4, 5)
    with pytest.raises(hubkit.errors.ShapeError, match=r"\(B, C, H, W\)"):
        hubkit.utils.make_grid(hubkit.ones(1, 1, 1, 2, 2))


def test_save_image_writes_a_png_without_pillow(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("no PIL here")
        return real_import(name, *args, **kwargs)

    images = hubkit.rand(2, 3, 4, 5)
    monkeypatch.setattr(builtins, "__import__", no_pil)
    hubkit.utils.save_image(images, tmp_path / "grid.png", padding=0)
    buffer = io.BytesIO()
    hubkit.utils.save_image(images, buffer, padding=0)
    with pytest.raises(hubkit.errors.ArgumentError, match="Pillow"):
        hubkit.utils.save_image(images, tmp_path / "grid.jpg")
    monkeypatch.setattr(builtins, "__import__", real_import)
    data = (tmp_path / "grid.png").read_bytes()
    assert data == buffer.getvalue() and data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (10, 4)
    from PIL import Image

    pixels = np.asarray(Image.open(tmp_path / "grid.png"))
    expected = np.clip(hubkit.utils.make_grid(images, padding=0).numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels, expected.transpose(1, 2, 0))
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == struct.unpack(">I", data[29:33])[0]


@pytest.mark.parity
@pytest.mark.parametrize("kwargs", [{}, {"nrow": 3, "padding": 1}, {"normalize": True},
                                    {"normalize": True, "scale_each": True}, {"normalize": True,
                                                                              "value_range": (0.2, 0.6)},
                                    {"pad_value": 0.5, "padding": 3}])
def test_make_grid_matches_torchvision(kwargs):
    import torch
    import torchvision

    images = np.random.default_rng(0).random((7, 1, 5, 6)).astype(np.float32)
    theirs = torchvision.utils.make_grid(torch.from_numpy(images), **kwargs).numpy()
    ours = hubkit.utils.make_grid(hubkit.from_numpy(images), **kwargs).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parity
def test_save_image_matches_torchvision_pixels(tmp_path):
    import torch
    import torchvision
    from PIL import Image

    images = np.random.default_rng(1).random((3, 3, 6, 4)).astype(np.float32)
    torchvision.utils.save_image(torch.from_numpy(images), tmp_path / "theirs.png")
    hubkit.utils.save_image(hubkit.from_numpy(images), tmp_path / "ours.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "ours.png")),
                                  np.asarray(Image.open(tmp_path / "theirs.png")))


def test_cudnn_flags_context_sets_and_restores():
    cudnn = hubkit.backends.cudnn
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == (True, False, False, True)
    with cudnn.flags(enabled=True, allow_tf32=False):
        assert cudnn.enabled is True and cudnn.allow_tf32 is False and cudnn.benchmark is False
    with cudnn.flags():  # torch's defaults: enabled=False, the others as they start
        assert cudnn.enabled is False and cudnn.allow_tf32 is True
    assert cudnn.enabled is True and cudnn.allow_tf32 is True
    with pytest.raises(RuntimeError), cudnn.flags(enabled=True, benchmark=True, deterministic=True):
        assert cudnn.benchmark is True and cudnn.deterministic is True
        raise RuntimeError("the flags come back after an error too")
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == (True, False, False, True)
