"""torchvision's model functions on hubkit's registry: get_model, get_model_weights, get_weight, list_models'
module= / include= / exclude=."""

from __future__ import annotations

import pytest

import hubkit
from hubkit.errors import ArgumentError, ArgumentTypeError, ModelNotFoundError
from hubkit.hub.api import Weights

UPSTREAM = "https://download.pytorch.org/models/"


def test_get_model_weights_is_an_enum_of_the_tags():
    enum = hubkit.get_model_weights("resnet50")
    assert enum.IMAGENET1K_V2 == enum.DEFAULT == enum["IMAGENET1K_V2"] == enum["DEFAULT"]
    assert enum.IMAGENET1K_V1.url == UPSTREAM + "resnet50-0676ba61.pth"
    assert [w.tag for w in enum] == ["IMAGENET1K_V1", "IMAGENET1K_V2"] and len(enum) == 2  # DEFAULT is an alias
    assert isinstance(enum.DEFAULT, Weights) and enum.DEFAULT in enum
    assert hubkit.get_weights("resnet18") not in enum
    assert enum.DEFAULT.meta["_metrics"]["ImageNet-1K"]["acc@1"] == 80.858
    assert enum.DEFAULT.transforms().resize_size == [232]
    assert hubkit.get_model_weights("ResNet50_Weights").model == "resnet50"
    assert repr(enum) == "<weights of 'resnet50': IMAGENET1K_V1, IMAGENET1K_V2; DEFAULT=IMAGENET1K_V2>"


def test_get_model_weights_accepts_the_builder_and_verifies_like_torchvision():
    from hubkit.zoo.vision import resnet18

    enum = hubkit.get_model_weights(resnet18)
    assert enum.model == "resnet18"
    assert enum.verify(None) is None
    assert enum.verify("DEFAULT") == enum.verify("ResNet18_Weights.IMAGENET1K_V1") == enum.IMAGENET1K_V1
    assert enum.verify(enum.IMAGENET1K_V1) == enum.IMAGENET1K_V1
    with pytest.raises(ArgumentError, match="are not weights of 'resnet18'"):
        enum.verify(hubkit.get_weights("resnet50"))
    with pytest.raises(ModelNotFoundError, match="not the builder of a registered model"):
        hubkit.get_model_weights(len)


def test_unknown_members_are_attribute_and_key_errors_naming_the_tags():
    enum = hubkit.get_model_weights("resnet50")
    with pytest.raises(AttributeError, match="no weight tag 'IMAGENET1K_V3'; its tags: IMAGENET1K_V1, IMAGENET1K_V2"):
        _ = enum.IMAGENET1K_V3
    with pytest.raises(KeyError, match="no weight tag 'imagenet1k_v1'"):
        enum["imagenet1k_v1"]  # enum members are case-sensitive
    arch_only = hubkit.get_model_weights("lenet5")
    assert len(arch_only) == 0 and list(arch_only) == []
    with pytest.raises(AttributeError, match="none \\(architecture only\\)"):
        _ = arch_only.DEFAULT
    with pytest.raises(ArgumentError, match="get_weight"):
        hubkit.get_model_weights("resnet50.IMAGENET1K_V1")


def test_get_weight_reads_torchvisions_spelling():
    w = hubkit.get_weight("ResNet50_Weights.IMAGENET1K_V2")
    assert (w.model, w.tag) == ("resnet50", "IMAGENET1K_V2")
    assert hubkit.get_weight("resnet50.DEFAULT") == w
    with pytest.raises(ArgumentError, match="enum.tag"):
        hubkit.get_weight("resnet50")


def test_get_model_builds_by_name_with_config(tmp_path, monkeypatch):
    model = hubkit.get_model("resnet18", num_classes=3)
    assert model.training and model.num_classes == 3 and model.fc.out_features == 3
    assert hubkit.get_model("vit_b_16", image_size=32).image_size == 32
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet5").write_bytes(b"not a checkpoint")  # hubkit.load would read this file
    assert type(hubkit.get_model("lenet5")).__name__ == "LeNet5"
    with pytest.raises(ModelNotFoundError, match="resnet50"):
        hubkit.get_model("resnet5")
    with pytest.raises(ArgumentTypeError, match="model name"):
        hubkit.get_model(hubkit.zoo.vision.resnet18)


def test_list_models_by_module_include_and_exclude():
    import hubkit.zoo.audio
    import hubkit.zoo.vision

    assert hubkit.list_models(module="vgg") == ["vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]
    assert hubkit.list_models(hubkit.zoo.audio) == ["m5", "wav2vec2_asr_base_960h", "wav2vec2_base"]
    assert hubkit.list_models(module="hubkit.zoo.audio") == hubkit.list_models(modality="audio")
    assert hubkit.list_models(module=hubkit.zoo.vision) == hubkit.list_models(modality="vision")
    assert hubkit.list_models(include="vgg*", exclude="*_bn") == ["vgg11", "vgg16"]
    assert hubkit.list_models("resnet*", exclude=["resnet1*", "resnet[2-5]*"]) == []
    assert hubkit.list_models(module="hubkit.zoo.vis") == []  # a dotted name is a whole module path
    with pytest.raises(ArgumentError, match="give one of them"):
        hubkit.list_models("vgg*", include="vgg*")
