"""The Fashion-MNIST benchmark's two-convolution CNN: shapes, parameters, keys, and parity with torch."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit.zoo.vision.fashion_mnist_cnn import FashionMNISTCNN


def test_load_builds_the_benchmark_network():
    model = hubkit.load("fashion_mnist_cnn")
    assert isinstance(model, FashionMNISTCNN)
    # conv 1->32 5x5, conv 32->64 5x5, dense 3136->1024, dense 1024->10 (zalandoresearch benchmark/convnet.py)
    assert sum(p.numel() for p in model.parameters()) == 832 + 51_264 + 3_212_288 + 10_250
    assert [k for k in model.state_dict() if k.endswith("weight")] == [
        "features.0.weight", "features.3.weight", "classifier.0.weight", "classifier.3.weight"]
    x = hubkit.from_numpy(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    assert model.features(x).shape == (3, 64, 7, 7)
    assert model(x).shape == (3, 10)


@pytest.mark.parity
def test_matches_the_same_layers_in_torch_on_copied_weights():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    hubkit.manual_seed(5)
    model = FashionMNISTCNN().eval()
    ref = tnn.Module()
    ref.features = tnn.Sequential(tnn.Conv2d(1, 32, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2, 2),
                                  tnn.Conv2d(32, 64, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2, 2))
    ref.classifier = tnn.Sequential(tnn.Linear(3136, 1024), tnn.ReLU(), tnn.Dropout(0.4), tnn.Linear(1024, 10))
    ref.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    ref.eval()
    x = np.random.default_rng(5).random((2, 1, 28, 28), dtype=np.float32)
    with hubkit.no_grad():
        got = model(hubkit.from_numpy(x)).numpy()
    with torch.no_grad():
        want = ref.classifier(torch.flatten(ref.features(torch.from_numpy(x)), 1)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
