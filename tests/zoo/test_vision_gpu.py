"""Every vision architecture gives the CPU's outputs on a CUDA device, and a ResNet-18 training step gives
the CPU's gradients. Same random weights on both sides. Skipped without cupy and a GPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import hubkit
import hubkit.nn.functional as F

pytestmark = pytest.mark.gpu

VISION = hubkit.list_models(modality="vision")
# architecture-only models take 1x28x28 digits unless listed here: (channels, height, width)
ARCH_ONLY_INPUT = {name: (3, 32, 32) for name in ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")}


def _input(name: str) -> np.ndarray:
    info = hubkit.model_info(name)
    if info["weights"]:
        default = next(w for w in info["weights"] if w["tag"] == info["default"])
        shape = (2, 3, *default["min_size"])
    else:
        shape = (2, *ARCH_ONLY_INPUT.get(name, (1, 28, 28)))
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", VISION)
def test_inference_on_cuda_matches_the_cpu(name):
    hubkit.manual_seed(0)
    model = hubkit.load(name).eval()
    gpu = copy.deepcopy(model).to("cuda")
    x = _input(name)
    with hubkit.no_grad():
        want = model(hubkit.from_numpy(x)).numpy()
        got = gpu(hubkit.tensor(x, device="cuda"))
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-3, atol=1e-4)


def test_resnet18_training_step_on_cuda_matches_the_cpu():
    hubkit.manual_seed(0)
    model = hubkit.load("resnet18").train()
    gpu = copy.deepcopy(model).to("cuda")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 64, 64)).astype(np.float32)
    y = rng.integers(0, 1000, 4)
    for m, device in ((model, "cpu"), (gpu, "cuda")):
        F.cross_entropy(m(hubkit.tensor(x, device=device)), hubkit.tensor(y, device=device)).backward()
    cpu_params = dict(model.named_parameters())
    for key, p in gpu.named_parameters():
        np.testing.assert_allclose(p.grad.cpu().numpy(), cpu_params[key].grad.numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=key)  # fmt: skip
    cpu_buffers = dict(model.named_buffers())
    for key, b in gpu.named_buffers():
        np.testing.assert_allclose(b.cpu().numpy(), cpu_buffers[key].numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
