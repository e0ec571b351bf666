"""hubkit.load / list_models / model_info / get_weights and the model CLI, without torch.

Checkpoints are written by hubkit's own torch writer and served by the local HTTP server; the registry
entry is pointed at them, so the whole pretrained path (download, verify, cache, load strictly, eval)
runs as it would against download.pytorch.org.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest

import hubkit
from hubkit import tasks
from hubkit.errors import ArgumentError, IntegrityError, ModelNotFoundError, StateDictError
from hubkit.hub import api, registry
from hubkit.hub.checkpoint.formats import save_checkpoint

REPO = Path(__file__).resolve().parents[2]
CAT = REPO / "examples" / "cat.jpg"
UPSTREAM = "https://download.pytorch.org/models/"


# ---------------------------------------------------------------- helpers


def _checkpoint_bytes(name: str, tmp_path: Path, seed: int = 0) -> tuple[bytes, dict[str, np.ndarray]]:
    """A torch-format checkpoint of ``name`` with random weights, written by hubkit (no torch)."""
    hubkit.manual_seed(seed)
    model = hubkit.load(name)
    state = {k: np.array(v.numpy()) for k, v in model.state_dict().items()}
    path = tmp_path / f"{name}-{seed}.pth"
    save_checkpoint(state, path, format="torch")
    return path.read_bytes(), state


def _point_registry_at(monkeypatch, name: str, url: str, data: bytes, *, prefix: str | None = None) -> str:
    """Replace ``name``'s DEFAULT tag by one at ``url`` whose hash prefix is that of ``data`` (or ``prefix``)."""
    api._ensure_zoo()
    entry = registry.get_entry(name)
    prefix = prefix or hashlib.sha256(data).hexdigest()[:8]
    tags = tuple(dataclasses.replace(w, url=url, sha256_prefix=prefix, sha256=None) if w.tag == entry.default else w
                 for w in entry.weights)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, weights=tags))
    return prefix


@pytest.fixture
def no_sockets(monkeypatch):
    """Fail on any socket creation (the cache must answer without the network)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ---------------------------------------------------------------- list_models


def test_list_models_is_naturally_sorted_and_complete():
    names = hubkit.list_models()
    for required in ["lenet5", "alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50",
                     "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d", "squeezenet1_1", "mobilenet_v2",
                     "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
                     "efficientnet_b0", "densenet121", "vit_b_16"]:
        assert required in names
    assert hubkit.list_models("resnet*") == ["resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50",
                                             "resnet56", "resnet101", "resnet110", "resnet152"]
    assert hubkit.list_models("resnet*", pretrained=True) == ["resnet18", "resnet34", "resnet50", "resnet101",
                                                              "resnet152"]


def test_list_models_filters_by_pattern_list_modality_task_and_pretrained():
    assert hubkit.list_models(["VGG16*", "alex*"]) == ["alexnet", "vgg16", "vgg16_bn"]
    assert hubkit.list_models("*", modality="text", task="sentence-embedding") == ["all-MiniLM-L6-v2"]
    assert "resnet18" in hubkit.list_models(modality="vision", task="image-classification")
    assert hubkit.list_models(task="speech-recognition") == ["wav2vec2_asr_base_960h"]
    assert hubkit.list_models(task="depth-estimation") == []
    assert "lenet5" not in hubkit.list_models(pretrained=True)
    assert hubkit.list_models(pretrained=False) == ["fashion_mnist_cnn", "lenet5", "m5", "resnet20", "resnet32",
                                                    "resnet44", "resnet56", "resnet110", "wav2vec2_base"]
    assert hubkit.list_models("nothing*") == []


# ---------------------------------------------------------------- name resolution and errors


def test_unknown_model_suggests_close_matches():
    with pytest.raises(ModelNotFoundError) as info:
        hubkit.load("resnet5")
    message = str(info.value)
    assert "'resnet50'" in message and "list_models" in message
    assert isinstance(info.value, KeyError)


def test_unknown_tag_lists_the_tags_and_suggests():
    with pytest.raises(ModelNotFoundError, match=r"IMAGENET1K_V2.*Its tags: IMAGENET1K_V1, IMAGENET1K_V2"):
        hubkit.get_weights("resnet50.imagenet1k_v3")


@pytest.mark.parametrize("spelling", ["resnet50.IMAGENET1K_V1", "resnet50.imagenet1k_v1",
                                      "ResNet50_Weights.IMAGENET1K_V1", "resnet50.resnet50-0676ba61.pth",
                                      "resnet50.resnet50-19c8e357.pth"])
def test_weight_spellings_resolve_to_the_same_tag(spelling):
    w = hubkit.get_weights(spelling)
    assert (w.model, w.tag) == ("resnet50", "IMAGENET1K_V1")
    assert w.url == UPSTREAM + "resnet50-0676ba61.pth"


def test_default_follows_torchvision_default_not_legacy_pretrained():
    assert hubkit.get_weights("resnet50").tag == "IMAGENET1K_V2"
    assert hubkit.get_weights("resnet50.DEFAULT").tag == "IMAGENET1K_V2"
    assert hubkit.get_weights("ResNet50_Weights.DEFAULT").tag == "IMAGENET1K_V2"
    info = hubkit.model_info("mobilenet_v2")
    assert (info["default"], info["legacy_default"]) == ("IMAGENET1K_V2", "IMAGENET1K_V1")


def test_old_file_names_are_aliases_of_their_resaved_versions():
    entry = registry.get_entry("resnet18")
    assert registry.resolve_tag(entry, "resnet18-5c106cde.pth").tag == "IMAGENET1K_V1"
    found = registry.find_by_file(UPSTREAM + "efficientnet_b0_rwightman-3dd342df.pth")
    assert found is not None and found[0].name == "efficientnet_b0" and found[2].sha256_prefix is None
    aliases = hubkit.model_info("resnet18")["weights"][0]["aliases"]
    assert aliases[0]["url"] == UPSTREAM + "resnet18-5c106cde.pth" and aliases[0]["sha256_prefix"] == "5c106cde"


def test_architecture_without_weights_refuses_pretrained():
    with pytest.raises(ModelNotFoundError, match="no published weights"):
        hubkit.load("lenet5", pretrained=True)
    with pytest.raises(ModelNotFoundError, match="no published weights"):
        hubkit.get_weights("lenet5")


def test_conflicting_weight_sources_are_refused():
    with pytest.raises(ArgumentError, match="pass only one"):
        hubkit.load("resnet18", pretrained=True, weights="IMAGENET1K_V1")
    with pytest.raises(ArgumentError, match="pass only one"):
        hubkit.load("resnet18.imagenet1k_v1", weights="DEFAULT")


def test_builder_arguments_the_weights_need_must_match_the_tag():
    """num_classes resets a vision head (tests/zoo/test_timm_interface.py); other arguments still must match."""
    with pytest.raises(ArgumentError, match="image_size=384"):
        hubkit.load("vit_b_16.IMAGENET1K_SWAG_E2E_V1", image_size=224)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(ArgumentError, match="neither a tag of 'resnet18' nor an existing file"):
        hubkit.load("resnet18", weights=str(tmp_path / "nope.pth"))


# ---------------------------------------------------------------- model_info and get_weights


def test_model_info_lists_everything_about_each_tag():
    info = hubkit.model_info("resnet50")
    assert info["name"] == "resnet50" and info["num_params"] == 25557032
    assert info["builder"] == "hubkit.zoo.vision.resnet.resnet50"
    v1, v2 = info["weights"]
    assert v1["url"] == UPSTREAM + "resnet50-0676ba61.pth" and v1["sha256_prefix"] == "0676ba61"
    assert v2["metrics"] == {"ImageNet-1K": {"acc@1": 80.858, "acc@5": 95.434}}
    assert v2["preprocessing"]["resize_size"] == 232 and v1["preprocessing"]["resize_size"] == 256
    assert v2["file_size_mb"] == 97.79 and v2["format"] == "torch" and "BSD-3-Clause" in v2["license"]
    assert "ResNet50_Weights.IMAGENET1K_V2" in v2["source"]
    assert v2["cached"] is None
    json.dumps(info)  # plain data
    only = hubkit.model_info("resnet50.imagenet1k_v1")
    assert [w["tag"] for w in only["weights"]] == ["IMAGENET1K_V1"]


def test_vit_swag_tag_carries_its_builder_arguments_and_license():
    (w,) = hubkit.model_info("vit_b_16.IMAGENET1K_SWAG_E2E_V1")["weights"]
    assert w["model_kwargs"] == {"image_size": 384}
    assert w["preprocessing"] == {"kind": "image-classification", "resize_size": 384, "crop_size": 384,
                                  "interpolation": "bicubic", "antialias": True,
                                  "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert "CC-BY-NC" in w["license"]


def test_get_weights_meta_and_transforms():
    w = hubkit.get_weights("efficientnet_b0")
    categories = w.meta["categories"]
    assert len(categories) == 1000 and categories[0] == "tench" and categories[281] == "tabby"
    assert w.meta["_metrics"]["ImageNet-1K"]["acc@1"] == 77.692
    t = w.transforms()
    assert (t.resize_size, t.crop_size, t.interpolation.value) == ([256], [224], "bicubic")
    assert hubkit.get_weights("vgg16.IMAGENET1K_FEATURES").meta["categories"] is None


def test_transforms_produce_normalized_crops_from_arrays_and_files():
    from PIL import Image

    t = hubkit.get_weights("resnet18").transforms()
    out = t(np.full((300, 400, 3), 124, dtype=np.uint8))
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    expected = (124 / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(out.numpy()[:, 100, 100], expected, atol=1e-6)
    with Image.open(CAT) as im:
        assert t(im.convert("L")).shape == (3, 224, 224)  # grayscale is converted to RGB
    batch = hubkit.from_numpy(np.zeros((2, 3, 240, 320), dtype=np.uint8))
    assert t(batch).shape == (2, 3, 224, 224)


# ---------------------------------------------------------------- load


def test_load_without_weights_builds_a_training_mode_model_with_kwargs():
    model = hubkit.load("lenet5", num_classes=7)
    assert model.training
    with hubkit.no_grad():
        assert model(hubkit.zeros(2, 1, 28, 28)).shape == (2, 7)


def test_load_local_checkpoint_and_state_dict_loads_strictly_in_eval_mode(tmp_path):
    data, state = _checkpoint_bytes("squeezenet1_1", tmp_path)
    path = tmp_path / "local.pth"
    path.write_bytes(data)
    for weights in (path, str(path), state):
        model = hubkit.load("squeezenet1_1", weights=weights)
        assert not model.training
        got = model.state_dict()
        for k, v in state.items():
            np.testing.assert_array_equal(got[k].numpy(), v)
    broken = dict(state)
    broken.pop("features.0.weight")
    with pytest.raises(StateDictError, match="features.0.weight"):
        hubkit.load("squeezenet1_1", weights=broken)


def test_densenet_legacy_key_names_are_remapped_before_the_strict_load():
    hubkit.manual_seed(3)
    state = {k: v.numpy() for k, v in hubkit.load("densenet121").state_dict().items()}
    renames = {"denselayer1.norm1.": "denselayer1.norm.1.", "denselayer2.conv2.": "denselayer2.conv.2."}
    legacy = {}  # as in 2017 files: old layer names, and no num_batches_tracked (BatchNorm tolerates that)
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            continue
        for old, new in renames.items():
            k = k.replace(old, new)
        legacy[k] = v
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    model = hubkit.load("densenet121", weights=legacy)
    np.testing.assert_array_equal(model.features.denseblock1.denselayer1.norm1.weight.numpy(),
                                  state["features.denseblock1.denselayer1.norm1.weight"])


def test_pretrained_downloads_verifies_caches_and_then_opens_no_socket(http_server, tmp_path, monkeypatch):
    data, state = _checkpoint_bytes("squeezenet1_1", tmp_path, seed=1)
    url = http_server.add("/models/squeezenet1_1-test.pth", data)
    _point_registry_at(monkeypatch, "squeezenet1_1", url, data)

    model = hubkit.load("squeezenet1_1", pretrained=True)
    assert not model.training
    np.testing.assert_array_equal(model.classifier[1].weight.numpy(), state["classifier.1.weight"])
    assert http_server.count("/models/squeezenet1_1-test.pth") == 1
    (w,) = [x for x in hubkit.model_info("squeezenet1_1")["weights"]]
    assert w["cached"] is not None and w["sha256"] == hashlib.sha256(data).hexdigest()  # full hash recorded

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    again = hubkit.load("squeezenet1_1", pretrained=True)
    np.testing.assert_array_equal(again.features[0].weight.numpy(), state["features.0.weight"])
    assert http_server.count("/models/squeezenet1_1-test.pth") == 1


def test_checkpoint_whose_hash_does_not_match_is_refused(http_server, tmp_path, monkeypatch):
    data, _ = _checkpoint_bytes("squeezenet1_1", tmp_path, seed=2)
    url = http_server.add("/models/squeezenet1_1-bad.pth", data)
    wrong = "0" * 8 if not hashlib.sha256(data).hexdigest().startswith("0" * 8) else "f" * 8
    _point_registry_at(monkeypatch, "squeezenet1_1", url, data, prefix=wrong)
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        hubkit.load("squeezenet1_1", pretrained=True)
    cached = [p for p in (Path(hubkit.hub.cache_dir()) / "files").rglob("*.pth")]
    assert cached == []  # nothing half-verified left under a final name


def test_old_file_url_is_verified_against_its_own_hash_prefix(http_server, tmp_path, monkeypatch):
    """resnet18-5c106cde.pth must hash to 5c106cde...: a different file under that name is refused."""
    data, _ = _checkpoint_bytes("squeezenet1_1", tmp_path, seed=4)
    url = http_server.add("/download.pytorch.org/models/resnet18-5c106cde.pth", data)
    monkeypatch.setenv("HUBKIT_MIRROR", url[: url.index("/download.pytorch.org/")])
    with pytest.raises(IntegrityError, match="5c106cde"):
        hubkit.load("resnet18", weights=UPSTREAM + "resnet18-5c106cde.pth")


# ---------------------------------------------------------------- predict and the CLI


def _serve_as_mirror(http_server, monkeypatch, name: str, data: bytes) -> str:
    """Serve ``data`` at the mirror path of ``name``'s DEFAULT upstream URL and set HUBKIT_MIRROR."""
    api._ensure_zoo()
    entry = registry.get_entry(name)
    upstream = entry.weight(entry.default).url
    path = "/mirror/" + upstream.split("://", 1)[1]
    url = http_server.add(path, data)
    monkeypatch.setenv("HUBKIT_MIRROR", url[: url.index("/mirror/") + len("/mirror/")])
    _point_registry_at(monkeypatch, name, upstream, data)
    return path


@pytest.fixture
def only_loopback(monkeypatch):
    """Refuse connections to anything but 127.0.0.1, so upstream hosts are provably never contacted."""
    real_connect = socket.socket.connect

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"connection to {address} attempted")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)

    def resolve(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"DNS lookup of {host} attempted")
        return real_getaddrinfo(host, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_predict_cli_end_to_end_against_a_local_mirror(http_server, tmp_path, monkeypatch, capsys, only_loopback):
    data, _ = _checkpoint_bytes("squeezenet1_1", tmp_path, seed=5)
    path = _serve_as_mirror(http_server, monkeypatch, "squeezenet1_1", data)

    from hubkit.cli import main

    assert main(["predict", "squeezenet1_1", str(CAT), str(CAT), "--topk", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(CAT) and out[4] == str(CAT)
    assert http_server.count(path) == 1
    categories = hubkit.get_weights("squeezenet1_1").meta["categories"]
    probs = []
    for line in out[1:4]:
        pct, label = line.strip().split("%", 1)
        assert label.strip() in categories
        probs.append(float(pct))
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 100.0 + 1e-6
    assert out[1:4] == out[5:8]  # the same image twice gives the same answer

    results = tasks.predict("squeezenet1_1", [CAT], topk=1000)
    assert len(results[0]) == 1000
    assert abs(sum(p for _, p in results[0]) - 1.0) < 1e-6
    assert [f"  {p:7.2%}  {c}" for c, p in results[0][:3]] == out[1:4]


def test_predict_reports_unreadable_images(tmp_path, http_server, monkeypatch):
    data, _ = _checkpoint_bytes("squeezenet1_1", tmp_path, seed=6)
    _serve_as_mirror(http_server, monkeypatch, "squeezenet1_1", data)
    bad = tmp_path / "not-an-image.jpg"
    bad.write_bytes(b"hello")
    with pytest.raises(ArgumentError, match="cannot read"):
        tasks.predict("squeezenet1_1", [bad])
    with pytest.raises(ArgumentError, match="does not exist"):
        tasks.predict("squeezenet1_1", [tmp_path / "missing.png"])


def test_models_and_info_cli(capsys):
    from hubkit.cli import main

    assert main(["models", "resnet*", "--pretrained"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert "IMAGENET1K_V2*" in lines[3] and "80.86" in lines[3]
    assert main(["models", "--json", "lenet*"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["weights"] == []
    assert main(["info", "resnet50"]) == 0
    text = capsys.readouterr().out
    assert "resnet50-11ad3fa6.pth" in text and "legacy pretrained=True loads IMAGENET1K_V1" in text
    assert "resize 232 (bilinear), crop 224" in text
    assert main(["info", "resnet5"]) == 1
    assert "resnet50" in capsys.readouterr().err


def test_fetch_weights_and_mirror_sync_accept_model_names(http_server, tmp_path, monkeypatch, capsys, only_loopback):
    data, _ = _checkpoint_bytes("squeezenet1_1", tmp_path, seed=7)
    _serve_as_mirror(http_server, monkeypatch, "squeezenet1_1", data)
    from hubkit.cli import main

    assert main(["fetch-weights", "squeezenet1_1", "--no-progress"]) == 0
    cached = Path(capsys.readouterr().out.strip())
    assert cached.read_bytes() == data and cached.name == "squeezenet1_1-b8a52dc0.pth"

    mirror = tmp_path / "mirror"
    assert main(["mirror", "sync", str(mirror), "squeezenet1_1", "--no-progress"]) == 0
    copied = mirror / "download.pytorch.org" / "models" / "squeezenet1_1-b8a52dc0.pth"
    assert copied.read_bytes() == data

    # the synced directory works as a file:// mirror for a fresh, offline cache
    monkeypatch.setenv("HUBKIT_HOME", str(tmp_path / "fresh-home"))
    monkeypatch.setenv("HUBKIT_MIRROR", mirror.as_uri())
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")
    model = hubkit.load("squeezenet1_1", pretrained=True)
    assert not model.training

    assert main(["fetch-weights", "lenet5"]) == 1
    assert "no published weights" in capsys.readouterr().err


def test_import_hubkit_does_not_import_the_zoo():
    import subprocess
    import sys

    code = ("import sys, hubkit; hubkit.load; "
            "print(any(m.startswith('hubkit.zoo') for m in sys.modules), 'hubkit.hub.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
