"""@register_model, and weight tags that carry their download (``fetch(tag.resource)``) and their preprocessing
(``tag.transforms()``)."""

from __future__ import annotations

import hashlib
import importlib

import pytest

import hubkit
from hubkit.errors import ArgumentError, DownloadError, IntegrityError
from hubkit.hub import Resource, api, fetch, registry
from hubkit.hub.registry import AudioPreprocessing, ExtraFile, WeightTag, register_model


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as the zoo left it, restored after the test."""
    api._ensure_zoo()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _tag(**kwargs) -> WeightTag:
    fields = {"tag": "v1", "url": "https://example.org/w/toy-0123abcd.pth", "num_params": 3,
              "preprocessing": AudioPreprocessing(8000)}
    return WeightTag(**{**fields, **kwargs})


def test_register_model_registers_the_builder_under_its_name_and_returns_it(scratch_registry):
    def toy_builder(**kwargs):
        return ("built", kwargs)

    decorated = register_model(modality="audio", task="keyword-spotting", description="a toy")(toy_builder)
    assert decorated is toy_builder
    info = hubkit.model_info("toy_builder")
    assert (info["modality"], info["task"], info["description"]) == ("audio", "keyword-spotting", "a toy")
    assert hubkit.load("toy_builder", width=2) == ("built", {"width": 2})

    @register_model("Toy-Named", modality="audio", task="keyword-spotting", weights=(_tag(),), default="V1")
    def other(**kwargs):
        return kwargs

    assert "Toy-Named" in hubkit.list_models() and hubkit.get_weights("toy-named").tag == "V1"


def test_register_model_refuses_a_second_model_of_the_same_name_and_bad_entries(scratch_registry):
    with pytest.raises(ValueError, match="registered twice"):
        register_model("resnet18", modality="vision", task="image-classification")(lambda: None)
    with pytest.raises(ValueError, match="default tag 'V2' is not among its tags"):
        register_model("toy2", modality="audio", task="t", weights=(_tag(),), default="V2")(lambda: None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'wieghts'"):
        register_model("toy3", modality="audio", task="t", wieghts=())(lambda: None)


def test_every_builder_is_the_importable_function_model_info_names():
    """The decorator leaves each builder a plain module-level function, so ``model_info``'s builder path imports."""
    for name in hubkit.list_models():
        entry = registry.get_entry(name)
        module_name, _, attr = hubkit.model_info(name)["builder"].rpartition(".")
        assert getattr(importlib.import_module(module_name), attr) is entry.builder, name


def test_weight_tag_resource_is_what_fetch_needs():
    tag = _tag(sha256_prefix="0123abcd", size=10, mirrors=("https://mirror.example/toy.pth",))
    assert tag.resource == Resource(url=tag.url, sha256_prefix="0123abcd", size=10,
                                    mirrors=("https://mirror.example/toy.pth",))
    full = _tag(sha256_prefix="0123abcd", sha256="ab" * 32)
    assert full.resource.sha256 == "ab" * 32 and full.resource.sha256_prefix is None  # one check, the stronger
    extra = ExtraFile(name="vocab.txt", url="https://example.org/vocab.txt", sha256="cd" * 32, size=4)
    assert extra.resource == Resource(url=extra.url, sha256="cd" * 32, size=4)


def test_fetch_takes_a_resource_and_verifies_it(http_server):
    data = b"weights " * 100
    url = http_server.add("/w/toy.pth", data)
    good = _tag(url=url, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    assert fetch(good.resource).read_bytes() == data
    bad = _tag(url=http_server.add("/w/bad.pth", data), sha256="0" * 64)
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        fetch(bad.resource)
    with pytest.raises(DownloadError, match="drop sha256="):
        fetch(good.resource, sha256="0" * 64)


def test_transforms_are_built_by_the_factory_the_zoo_set():
    calls = []

    def factory(tag, **kwargs):
        calls.append((tag.tag, kwargs))
        return "preprocess"

    assert _tag(transforms_factory=factory).transforms(progress=False) == "preprocess"
    assert calls == [("V1", {"progress": False})]
    with pytest.raises(ArgumentError, match="declares no preprocessing \\(audio\\)"):
        _tag().transforms()
    assert _tag(transforms_factory=factory) == _tag()  # the factory is behaviour, not part of the tag's identity
