"""timm's interface on the vision zoo: forward_features / forward_head, stage feature maps (features_only,
feature_info), reset_classifier, pretrained=True with another num_classes, pretrained_cfg.

Random weights throughout; the pretrained path is served from the local HTTP server (no network)."""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache

import numpy as np
import pytest

import hubkit
from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.hub import api, registry
from hubkit.hub.checkpoint.formats import save_checkpoint
from hubkit.zoo.vision.backbone import FeatureListNet

ARCHS = ["resnet18", "resnet50", "vgg16", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
         "efficientnet_b0", "convnext_tiny", "densenet121", "vit_b_16", "squeezenet1_1", "alexnet",
         "shufflenet_v2_x1_0", "resnet20", "lenet5"]
# models whose convs pad "same" and pool by floor: a stage map is exactly input / reduction
EXACT_REDUCTION = set(ARCHS) - {"alexnet", "squeezenet1_1", "lenet5"}


def _side(name: str) -> int:
    return {"vit_b_16": 224, "resnet20": 32, "lenet5": 28}.get(name, 64)


def _input(name: str, n: int = 1, seed: int = 0) -> hubkit.Tensor:
    channels = 1 if name == "lenet5" else 3
    x = np.random.default_rng(seed).standard_normal((n, channels, _side(name), _side(name))).astype(np.float32)
    return hubkit.from_numpy(x)


def _build(name: str, **kwargs):
    hubkit.manual_seed(0)
    return hubkit.load(name, **kwargs).eval()


@cache
def _model(name: str):
    """One model per architecture shared by the read-only tests (building VGG-16 alone takes seconds)."""
    return _build(name)


@pytest.mark.parametrize("name", ARCHS)
def test_forward_is_the_head_on_the_trunk_and_stages_match_feature_info(name):
    model, x = _model(name), _input(name)
    with hubkit.no_grad():
        logits = model(x)
        feats = model.forward_features(x)
        pre = model.forward_head(feats, pre_logits=True)
        maps = model.forward_intermediates(x)
    np.testing.assert_array_equal(model.forward_head(feats).numpy(), logits.numpy())
    assert logits.shape == (1, model.num_classes)
    assert pre.shape == (1, model.head_hidden_size)
    if name == "vit_b_16":
        assert feats.shape == (1, 197, model.num_features)
    else:
        assert feats.shape[:2] == (1, model.num_features) and feats.ndim == 4
    info = model.feature_info
    assert [m.shape[1] for m in maps] == info.channels() and len(maps) == len(info)
    assert info.reduction() == sorted(info.reduction())
    for fmap, r in zip(maps, info.reduction()):
        side = _side(name) / r
        if name in EXACT_REDUCTION:
            assert fmap.shape[2:] == (side, side)
        else:  # unpadded convolutions trim a few pixels off the nominal size
            assert side - 4 <= fmap.shape[2] <= side and fmap.shape[2] == fmap.shape[3]
    for module in info.module_name():
        model.get_submodule(module)  # each stage ends at a real module


def test_resnet_stages_are_its_submodules():
    """The stage maps of CIFAR ResNet-20 (no torchvision counterpart) are its own layers' outputs."""
    model, x = _model("resnet20"), _input("resnet20")
    with hubkit.no_grad():
        maps = model.forward_intermediates(x)
        stem = hubkit.nn.functional.relu(model.bn1(model.conv1(x)))
        expected = [stem, model.layer1(stem)]
        expected += [model.layer2(expected[-1])]
        expected += [model.layer3(expected[-1])]
    for got, want in zip(maps, expected):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert model.feature_info.channels() == [16, 16, 32, 64] and model.feature_info.reduction() == [1, 1, 2, 4]


@pytest.mark.parametrize("name", ARCHS)
def test_features_only_returns_the_chosen_stage_maps_with_the_model_keys(name):
    full = _model(name)
    feats = _build(name, features_only=True, out_indices=(-1, 0))  # same seed, so the same weights as _model
    assert isinstance(feats, FeatureListNet) and not feats.training
    stages = len(full.feature_info)
    assert feats.out_indices == (0, stages - 1) == feats.feature_info.out_indices
    x = _input(name, seed=1)
    with hubkit.no_grad():
        got = feats(x)
        want = full.forward_intermediates(x, (0, stages - 1))
    assert feats.feature_info.channels() == [full.feature_info.channels(i) for i in (0, stages - 1)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    head = full.classifier_name.split(".")[0]
    keys = set(feats.state_dict())
    assert keys == {k for k in full.state_dict() if k.split(".")[0] not in full.head_modules}
    assert not any(k.startswith(head + ".") or k == head for k in keys)


def test_features_only_defaults_to_every_stage_and_counts_the_last_n():
    feats = _build("resnet18", features_only=True)
    assert feats.feature_info.channels() == [64, 64, 128, 256, 512]
    assert feats.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert feats.feature_info.module_name() == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert len(feats(_input("resnet18"))) == 5
    assert _build("resnet18", features_only=True, out_indices=2).out_indices == (3, 4)
    feats.train()
    assert feats.training and feats.layer1.training and feats._model.training


@pytest.mark.parametrize("out_indices, error, match", [
    ((0, 7), ArgumentError, "out of range"), ((1, 1), ArgumentError, "twice"), (9, ArgumentError, "last 9"),
    ((), ArgumentTypeError, "stage numbers"), ("1", ArgumentTypeError, "stage numbers"),
    (1.5, ArgumentTypeError, "an int or a sequence"),
])  # fmt: skip
def test_bad_out_indices_are_refused(out_indices, error, match):
    with pytest.raises(error, match=match):
        hubkit.load("resnet20", features_only=True, out_indices=out_indices)


def test_features_only_and_out_indices_are_for_the_vision_zoo():
    with pytest.raises(ArgumentError, match="out_indices= chooses the stages of features_only=True"):
        hubkit.load("resnet18", out_indices=(1, 2))
    with pytest.raises(ArgumentError, match="audio model"):
        hubkit.load("m5", features_only=True)


@pytest.mark.parametrize("name", ARCHS)
def test_reset_classifier_gives_a_fresh_head_of_the_new_size_and_keeps_the_trunk(name):
    model = _build(name)
    before = {k: v.array for k, v in model.state_dict().items()}  # the live arrays: untouched ones stay the same
    x = _input(name)
    with hubkit.no_grad():
        trunk = model.forward_features(x).numpy()
    model.reset_classifier(7)
    assert model.num_classes == 7
    with hubkit.no_grad():
        assert model(x).shape == (1, 7)
        np.testing.assert_array_equal(model.forward_features(x).numpy(), trunk)
    changed = {k for k, v in model.state_dict().items() if before.get(k) is not v.array}
    assert changed == {f"{model.classifier_name}.weight", f"{model.classifier_name}.bias"}
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), hubkit.nn.Identity) and model.num_classes == 0
    with hubkit.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), model.forward_head(model.forward_features(x), True).numpy())
    model.reset_classifier(3)  # from no head back to one: its input width is remembered
    with hubkit.no_grad():
        assert model(x).shape == (1, 3)


def test_reset_classifier_refuses_a_negative_size():
    with pytest.raises(ArgumentError, match="num_classes must be an int >= 0"):
        _build("resnet20").reset_classifier(-1)


def _serve(http_server, monkeypatch, tmp_path, name: str) -> dict[str, np.ndarray]:
    """Serve a random checkpoint of ``name`` and point its DEFAULT tag at it."""
    hubkit.manual_seed(5)
    state = {k: np.array(v.numpy()) for k, v in hubkit.load(name).state_dict().items()}
    path = tmp_path / f"{name}.pth"
    save_checkpoint(state, path, format="torch")
    data = path.read_bytes()
    url = http_server.add(f"/models/{name}-test.pth", data)
    api._ensure_zoo()
    entry = registry.get_entry(name)
    tags = tuple(dataclasses.replace(w, url=url, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
                 if w.tag == entry.default else w for w in entry.weights)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, weights=tags))
    return state


@pytest.mark.parametrize("name, head", [("resnet18", "fc"), ("squeezenet1_1", "classifier.1")])
def test_pretrained_with_another_num_classes_loads_the_trunk_and_a_fresh_head(name, head, http_server, monkeypatch,
                                                                             tmp_path):
    state = _serve(http_server, monkeypatch, tmp_path, name)
    model = hubkit.load(name, pretrained=True, num_classes=10)
    assert not model.training and model.num_classes == 10
    got = model.state_dict()
    for key, value in state.items():
        if key.startswith(head + "."):
            assert got[key].shape[0] == 10  # the new head
        else:
            np.testing.assert_array_equal(got[key].numpy(), value)
    with hubkit.no_grad():
        assert model(_input(name)).shape == (1, 10)
    assert model.pretrained_cfg["num_classes"] == 1000  # what the weights were trained for, as in timm
    assert model.pretrained_cfg["url"] == http_server.url(f"/models/{name}-test.pth")


def test_features_only_on_pretrained_weights(http_server, monkeypatch, tmp_path):
    state = _serve(http_server, monkeypatch, tmp_path, "resnet18")
    feats = hubkit.load("resnet18", pretrained=True, features_only=True, out_indices=(4,))
    np.testing.assert_array_equal(feats.layer4[1].conv2.weight.numpy(), state["layer4.1.conv2.weight"])
    assert feats.pretrained_cfg["architecture"] == "resnet18"
    assert [m.shape for m in feats(_input("resnet18"))] == [(1, 512, 2, 2)]


def test_a_head_that_cannot_be_reset_is_refused_before_any_download(monkeypatch):
    """Only vision-zoo classifiers reset their head; labelled weights of another model keep their size (here:
    the audio zoo's M5 keyword spotter given a tag with 29 labels)."""
    from hubkit.zoo.audio import M5

    api._ensure_zoo()
    entry = registry.get_entry("wav2vec2_asr_base_960h")
    (tag,) = entry.weights
    labelled = dataclasses.replace(tag, categories=lambda: tuple("ab"), num_classes=29)
    monkeypatch.setitem(registry._REGISTRY, "wav2vec2_asr_base_960h", dataclasses.replace(
        entry, weights=(labelled,), builder=lambda num_classes: M5(n_output=num_classes)))  # fmt: skip
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")  # a download attempt would raise OfflineError instead
    with pytest.raises(ArgumentError, match=r"needs num_classes=29, got num_classes=10: its head cannot be reset\. "
                                            r"Load the weights with the default num_classes and replace the layer"):
        hubkit.load("wav2vec2_asr_base_960h", pretrained=True, num_classes=10)


def test_pretrained_cfg_describes_the_weights_like_timm():
    cfg = _model("resnet50").pretrained_cfg  # loaded without weights: the DEFAULT tag's configuration
    assert cfg["tag"] == "IMAGENET1K_V2" and cfg["url"].endswith("resnet50-11ad3fa6.pth")
    assert cfg["input_size"] == (3, 224, 224) and cfg["crop_pct"] == round(224 / 232, 4)
    assert cfg["interpolation"] == "bilinear" and cfg["mean"] == (0.485, 0.456, 0.406)
    assert (cfg["first_conv"], cfg["classifier"], cfg["num_classes"]) == ("conv1", "fc", 1000)
    assert _model("resnet50").default_cfg is cfg
    vit = _model("vit_b_16").pretrained_cfg
    assert vit["fixed_input_size"] and vit["first_conv"] == "conv_proj" and vit["classifier"] == "heads.head"
    effnet = _model("efficientnet_b0").pretrained_cfg
    assert effnet["interpolation"] == "bicubic" and effnet["crop_pct"] == 0.875
    assert (effnet["first_conv"], effnet["classifier"]) == ("features.0.0", "classifier.1")
    lenet = _model("lenet5").pretrained_cfg  # architecture only: no weights, no preprocessing
    assert lenet["url"] is None and lenet["input_size"] == (1, 28, 28) and lenet["mean"] is None


@pytest.mark.gpu
def test_reset_head_and_feature_maps_on_a_cuda_device_equal_the_cpus():
    model = _build("resnet18").to("cuda")
    model.reset_classifier(4)  # the new head goes where the model is
    assert model.fc.weight.device == model.conv1.weight.device
    cpu = _build("resnet18", features_only=True, out_indices=(2, 4))
    gpu = _build("resnet18", features_only=True, out_indices=(2, 4), device="cuda")
    x = _input("resnet18")
    with hubkit.no_grad():
        assert model(x.to("cuda")).shape == (1, 4)
        for c, g in zip(cpu(x), gpu(x.to("cuda"))):
            np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-4, atol=1e-4)
