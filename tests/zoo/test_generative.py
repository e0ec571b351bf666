"""The GAN zoo's generators without torch: upstream's checkpoint object (a pickled models.utils.config.BaseConfig
plus netG/avgG/netD state dicts) read as data, the architecture rebuilt from its config, sampling, the PNG grid,
the CLI, and (``-m parity``) the generators against the GAN zoo's architecture re-written in torch.

Checkpoints are built here in the exact upstream layout: without torch as raw protocol-2 opcodes (what pickle
writes for a plain class instance: the class, NEWOBJ, its ``__dict__``, BUILD), and in the parity tests with
``torch.save`` itself and a stand-in class named ``models.utils.config.BaseConfig``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
import sys
import types
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import hubkit
from hubkit import tasks
from hubkit.errors import (
    ArgumentError,
    CheckpointError,
    ShapeError,
    StateDictError,
    UnsafeCheckpointError,
)
from hubkit.hub import api, registry
from hubkit.hub.checkpoint.formats import AttributeRecord, load_checkpoint, load_object
from hubkit.zoo.generative import (
    DCGAN,
    DCGANGenerator,
    PGANGenerator,
    ProgressiveGAN,
    gan_zoo_keys,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
from checkpoint_builders import glob, i, ordered_dict, s, tensor, torch_zip, tup  # noqa: E402

# What ProgressiveGAN.getStateDict saves in `config` (models/base_GAN.py, models/progressive_gan.py), small.
PGAN_CONFIG = {
    "depthScale0": 8, "initBiasToZero": True, "leakyReluLeak": 0.2, "depthOtherScales": [6, 4],
    "perChannelNormalization": True, "alpha": 0.0, "miniBatchStdDev": True, "equalizedlR": True,
    "noiseVectorDim": 6, "dimOutput": 3, "learningRate": 0.001, "attribKeysOrder": None, "categoryVectorDim": 0,
    "weightConditionG": 0.0, "weightConditionD": 0.0, "GDPP": False, "latentVectorDim": 6,
    "lossCriterion": "WGANGP", "lambdaGP": 10.0, "epsilonD": 0.001, "logisticGradReal": 0.0,
}
DCGAN_CONFIG = {
    "dimG": 4, "dimD": 4, "depth": 2, "noiseVectorDim": 5, "dimOutput": 3, "learningRate": 0.0002,
    "attribKeysOrder": None, "categoryVectorDim": 0, "latentVectorDim": 5, "lossCriterion": "DCGAN",
    "lambdaGP": 0.0, "epsilonD": 0.0,
}


# ---------------------------------------------------------------- upstream files, byte by byte


def _value(v) -> bytes:
    """Protocol-2 opcodes for a config value."""
    if v is None:
        return b"N"
    if isinstance(v, bool):
        return b"\x88" if v else b"\x89"
    if isinstance(v, int):
        return i(v)
    if isinstance(v, float):
        return b"G" + struct.pack(">d", v)
    if isinstance(v, str):
        return s(v)
    if isinstance(v, list):
        return b"](" + b"".join(map(_value, v)) + b"e"
    if isinstance(v, dict):
        return b"}(" + b"".join(_value(k) + _value(x) for k, x in v.items()) + b"u"
    raise TypeError(v)


def base_config(attributes: dict, module: str = "models.utils.config", name: str = "BaseConfig") -> bytes:
    """What pickle writes for an instance of a plain class: GLOBAL, EMPTY_TUPLE, NEWOBJ, its __dict__, BUILD."""
    return glob(module, name) + b")\x81" + _value(attributes) + b"b"


def gan_file(path: Path, config: bytes | dict, parts: dict[str, dict[str, np.ndarray]]) -> bytes:
    """A torch zip checkpoint ``{"config": ..., <part>: OrderedDict(state)}``; returns its bytes."""
    records: dict[str, bytes] = {}
    body = s("config") + (config if isinstance(config, bytes) else base_config(config))
    for part, state in parts.items():
        items = b""
        for key, array in state.items():
            array = np.ascontiguousarray(array)
            storage = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}[array.dtype]
            rec = str(len(records))
            records[rec] = array.tobytes()
            stride = tuple(st // array.itemsize for st in array.strides)
            items += s(key) + tensor(rec, array.size, array.shape, stride, storage_class=storage)
        body += s(part) + ordered_dict() + b"(" + items + b"u"
    torch_zip(path, b"\x80\x02}(" + body + b"u.", records)
    return path.read_bytes()


def _random_state(model, seed: int, legacy: bool = False) -> dict[str, np.ndarray]:
    """Random values for every key of a hubkit generator (upstream's keys); ``legacy`` drops ``.module``."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in model.state_dict().items():
        array = value.numpy()
        if array.dtype == np.int64:
            new = np.array(seed, np.int64).reshape(array.shape)
        elif key.endswith("running_var"):
            new = rng.uniform(0.5, 1.5, array.shape).astype(np.float32)
        else:
            new = rng.standard_normal(array.shape).astype(np.float32)
        out[key.replace(".module.", ".") if legacy else key] = new
    return out


def _discriminator_state(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"decisionLayer.module.weight": rng.standard_normal((1, 8)).astype(np.float32),
            "decisionLayer.module.bias": np.zeros(1, np.float32)}


def _pgan_parts(config=PGAN_CONFIG, seed=0, legacy=False, avg=True):
    g = PGANGenerator(config["latentVectorDim"], config["depthScale0"], tuple(config["depthOtherScales"]))
    parts = {"netG": _random_state(g, seed, legacy), "netD": _discriminator_state(np.random.default_rng(seed))}
    if avg:
        parts["avgG"] = _random_state(g, seed + 100, legacy)
    return parts


def _serve(http_server, monkeypatch, name: str, data: bytes, builder=None) -> None:
    """Point ``name``'s weight tag at ``data`` on the local server (full sha256 and size, as a pinned tag)."""
    api._ensure_zoo()
    entry = registry.get_entry(name)
    url = http_server.add(f"/gan_zoo/{name}.pth", data)
    (tag,) = entry.weights
    tag = dataclasses.replace(tag, url=url, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    changes = {"weights": (tag,)} if builder is None else {"weights": (tag,), "builder": builder}
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, **changes))


def _tiny_pgan(**kw):
    return ProgressiveGAN(dimLatentVector=4, depthScale0=4, **kw)


# ---------------------------------------------------------------- a numpy reference of the PGAN generator


def _np_conv(x, w, b, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))  # N, C, H, W, kh, kw
    return np.einsum("nchwij,ocij->nohw", windows, w, optimize=True) + b[None, :, None, None]


def _np_pgan(state, config, z, *, part="avgG"):
    """progressive_conv_net.GNet.forward in numpy, from the file's own arrays (float64)."""
    def get(name):
        return state[f"{part}.{name}"].astype(np.float64)

    def he(w):
        return math.sqrt(2.0 / np.prod(w.shape[1:]))

    def conv(x, name, pad):
        w, b = get(f"{name}.module.weight"), get(f"{name}.module.bias")
        return _np_conv(x, w, b, pad) * he(w)

    def norm(x):
        return x / np.sqrt((x * x).mean(axis=1, keepdims=True) + 1e-8)

    def act(x):
        return norm(np.where(x > 0, x, 0.2 * x))

    def up(x):
        return x.repeat(2, axis=2).repeat(2, axis=3)

    x = norm(z.astype(np.float64))
    w, b = get("formatLayer.module.weight"), get("formatLayer.module.bias")
    x = act(((x @ w.T + b) * he(w)).reshape(len(z), -1, 4, 4))
    x = act(conv(x, "groupScale0.0", 1))
    scales = len(config["depthOtherScales"])
    alpha = config["alpha"]
    low = up(conv(x, f"toRGBLayers.{scales - 1}", 0)) if alpha > 0 and scales == 1 else None
    for sc in range(scales):
        x = up(x)
        x = act(conv(x, f"scaleLayers.{sc}.0", 1))
        x = act(conv(x, f"scaleLayers.{sc}.1", 1))
        if alpha > 0 and sc == scales - 2:
            low = up(conv(x, f"toRGBLayers.{scales - 1}", 0))
    x = conv(x, f"toRGBLayers.{scales}", 0)
    return alpha * low + (1 - alpha) * x if low is not None else x


# ---------------------------------------------------------------- loading the published layout


def test_pretrained_pgan_is_rebuilt_from_the_checkpoint_config_and_loads_both_generators(http_server, tmp_path,
                                                                                         monkeypatch):
    parts = _pgan_parts()
    data = gan_file(tmp_path / "pgan.pth", PGAN_CONFIG, parts)
    _serve(http_server, monkeypatch, "pgan-celebahq-256", data, builder=_tiny_pgan)
    model = hubkit.load("pgan-celebahq-256", pretrained=True)
    assert not model.training and model.image_size == (16, 16) and model.latent_dim == 6
    assert model.config.depthOtherScales == [6, 4] and model.config.lambdaGP == 10.0  # every saved field
    assert model.netG.scales_depth == [8, 6, 4]
    for part in ("netG", "avgG"):
        got = {k: v.numpy() for k, v in getattr(model, part).state_dict().items()}
        assert got.keys() == parts[part].keys()  # upstream's keys, netD skipped
        for key, value in parts[part].items():
            np.testing.assert_array_equal(got[key], value)
    flat = {f"{p}.{k}": v for p in ("netG", "avgG") for k, v in parts[p].items()}
    z, labels = model.build_noise_data(3, seed=1)
    assert labels is None and z.shape == (3, 6) and z.dtype == hubkit.float32
    for part, get_avg in (("avgG", True), ("netG", False)):
        want = _np_pgan(flat, PGAN_CONFIG, z.numpy(), part=part)
        np.testing.assert_allclose(model.test(z, getAvG=get_avg).numpy(), want, rtol=1e-4, atol=1e-4)
    assert http_server.count("/gan_zoo/pgan-celebahq-256.pth") == 1


def test_sample_draws_clamped_images_from_the_averaged_generator_repeatably(http_server, tmp_path, monkeypatch):
    _serve(http_server, monkeypatch, "pgan-celebahq-256", gan_file(tmp_path / "p.pth", PGAN_CONFIG, _pgan_parts()),
           builder=_tiny_pgan)  # fmt: skip
    model = hubkit.load("pgan-celebahq-256", pretrained=True)
    images = model.sample(3, seed=0)
    assert images.shape == (3, 3, 16, 16) and images.dtype == hubkit.float32
    z, _ = model.build_noise_data(3, seed=0)
    raw = model.test(z, getAvG=True).numpy()
    assert np.abs(raw).max() > 1  # PGAN (WGAN-GP loss, no tanh) leaves [-1, 1]; sample clamps as the hub page does
    np.testing.assert_array_equal(images.numpy(), np.clip(raw, -1, 1))
    np.testing.assert_array_equal(model(z).numpy(), raw)  # forward is the averaged generator
    np.testing.assert_array_equal(model.sample(3, seed=0).numpy(), images.numpy())
    # image i does not depend on n (up to BLAS rounding, which depends on the batch shape)
    np.testing.assert_allclose(model.sample(1, seed=0).numpy()[0], images.numpy()[0], rtol=1e-4, atol=1e-4)
    assert not np.array_equal(model.sample(3, seed=1).numpy(), images.numpy())
    hubkit.manual_seed(5)
    first = model.sample(2).numpy()
    hubkit.manual_seed(5)
    np.testing.assert_array_equal(model.sample(2).numpy(), first)  # seed=None: the global generator


@pytest.mark.parametrize("others", [(6,), (6, 4)])
def test_the_fade_in_blends_the_previous_scale_as_upstream(others):
    config = {**PGAN_CONFIG, "depthOtherScales": list(others), "alpha": 0.4}
    g = PGANGenerator(6, 8, others)
    parts = {"netG": _random_state(g, 1), "avgG": _random_state(g, 2)}
    model = _tiny_pgan()
    model.load_state_dict({"config": config, **parts})
    assert model.avgG.alpha == 0.4 and model.image_size == (4 * 2 ** len(others),) * 2
    z, _ = model.build_noise_data(2, seed=0)
    flat = {f"{p}.{k}": v for p in parts for k, v in parts[p].items()}
    np.testing.assert_allclose(model(z).numpy(), _np_pgan(flat, config, z.numpy()), rtol=1e-4, atol=1e-4)
    with pytest.raises(ArgumentError, match="alpha"):
        PGANGenerator(6, 8, others, alpha=1.5)


def test_sampling_in_several_batches_gives_the_same_images(monkeypatch):
    import hubkit.zoo.generative._gan as gan

    hubkit.manual_seed(0)
    model = ProgressiveGAN(dimLatentVector=6, depthScale0=8, depthOtherScales=[4]).eval()
    whole = model.sample(5, seed=3).numpy()
    monkeypatch.setattr(gan, "_PIXELS_PER_BATCH", 2 * 8 * 8)  # two 8x8 images per forward
    np.testing.assert_allclose(model.sample(5, seed=3).numpy(), whole, rtol=1e-5, atol=1e-5)


def test_legacy_keys_and_dataparallel_prefixes_load_as_upstream_maps_them(tmp_path):
    parts = _pgan_parts(seed=2, legacy=True, avg=False)  # old files: `formatLayer.weight`, no avgG
    parts["netG"] = {("module." + k if k.startswith("scaleLayers") else k): v for k, v in parts["netG"].items()}
    data_path = tmp_path / "old.pth"
    gan_file(data_path, PGAN_CONFIG, parts)
    model = hubkit.load("pgan-celebahq-256", weights=str(data_path))
    state = {k: v.numpy() for k, v in model.netG.state_dict().items()}
    np.testing.assert_array_equal(state["formatLayer.module.weight"], parts["netG"]["formatLayer.weight"])
    np.testing.assert_array_equal(state["scaleLayers.1.0.module.bias"], parts["netG"]["module.scaleLayers.1.0.bias"])
    avg = {k: v.numpy() for k, v in model.avgG.state_dict().items()}
    assert all(np.array_equal(avg[k], state[k]) for k in state)  # no avgG saved: a copy of netG, as buildAvG makes
    expected = set(model.netG.state_dict())
    assert gan_zoo_keys({"groupScale0.0.weight": 1, "module.toRGBLayers.0.module.bias": 2, "other": 3}, expected) == {
        "groupScale0.0.module.weight": 1, "toRGBLayers.0.module.bias": 2, "other": 3}


def test_a_checkpoint_that_does_not_fit_fails_with_the_keys_named(tmp_path):
    parts = _pgan_parts()
    parts["netG"]["toRGBLayers.2.module.weight"] = np.zeros((3, 5, 1, 1), np.float32)  # wrong shape
    parts["avgG"]["extra.module.weight"] = np.zeros(2, np.float32)
    gan_file(tmp_path / "bad.pth", PGAN_CONFIG, parts)
    with pytest.raises(StateDictError, match=r"toRGBLayers\.2\.module\.weight") as caught:
        hubkit.load("pgan-celebahq-256", weights=str(tmp_path / "bad.pth"))
    assert "avgG.extra.module.weight" in caught.value.unexpected
    model = _tiny_pgan()
    with pytest.raises(CheckpointError, match="lossCriterion"):
        model.load_state_dict({"config": {**PGAN_CONFIG, "lossCriterion": "Hinge"}, "netG": {}})
    with pytest.raises(CheckpointError, match="latentVectorDim"):
        model.load_state_dict({"config": {**PGAN_CONFIG, "latentVectorDim": 9}, "netG": {}})
    with pytest.raises(CheckpointError, match="holds"):
        model.load_state_dict({"config": PGAN_CONFIG, "optimizer": {}})


def test_a_matching_config_keeps_the_layers_and_a_flat_state_dict_round_trips(tmp_path):
    parts = _pgan_parts(seed=4)
    gan_file(tmp_path / "p.pth", PGAN_CONFIG, parts)
    obj = load_object(tmp_path / "p.pth", tensor=lambda d: d.array)
    model = ProgressiveGAN(dimLatentVector=6, depthScale0=8, depthOtherScales=[6, 4])
    net = model.netG
    model.load_state_dict(obj)
    assert model.netG is net  # same architecture: the layers are loaded in place, not built again
    copy = ProgressiveGAN(dimLatentVector=6, depthScale0=8, depthOtherScales=[6, 4])
    copy.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(copy.sample(2, seed=0).numpy(), model.sample(2, seed=0).numpy())
    assert list(model.state_dict())[0].startswith("netG.")


def test_the_config_is_read_as_data_and_the_container_needs_a_key_for_a_flat_read(tmp_path):
    path = tmp_path / "p.pth"
    gan_file(path, PGAN_CONFIG, _pgan_parts())
    obj = hubkit.load(path)  # a file: torch.load's meaning
    assert isinstance(obj["config"], AttributeRecord)
    assert obj["config"].qualname == "models.utils.config.BaseConfig"
    assert obj["config"].depthOtherScales == [6, 4] and obj["config"].attributes == PGAN_CONFIG
    assert "models" not in sys.modules  # nothing of the GAN zoo was imported
    with pytest.raises(AttributeError, match="depthScale1"):
        getattr(obj["config"], "depthScale1")  # noqa: B009
    with pytest.raises(CheckpointError, match="key='avgG'|'avgG'"):
        load_checkpoint(path)
    assert "formatLayer.module.weight" in load_checkpoint(path, key="avgG")


def test_a_config_naming_any_other_global_is_refused_and_nothing_runs(http_server, tmp_path, monkeypatch):
    parts = _pgan_parts()
    evil = glob("os", "system") + b"(" + s("echo pwned") + b"tR"  # what a malicious 'config' would pickle
    _serve(http_server, monkeypatch, "pgan-celebahq-256", gan_file(tmp_path / "evil.pth", evil, parts))
    with pytest.raises(UnsafeCheckpointError, match=r"os\.system") as caught:
        hubkit.load("pgan-celebahq-256", pretrained=True)
    assert caught.value.global_name == "os.system"
    lookalike = base_config(PGAN_CONFIG, module="models.utils.config", name="TrainingState")
    gan_file(tmp_path / "look.pth", lookalike, parts)
    with pytest.raises(UnsafeCheckpointError, match="models.utils.config.TrainingState"):
        load_object(tmp_path / "look.pth")
    called = glob("models.utils.config", "BaseConfig") + b"(tR"  # calling the class (REDUCE), not NEWOBJ
    gan_file(tmp_path / "call.pth", called, parts)
    with pytest.raises(UnsafeCheckpointError, match="as a function to call"):
        load_object(tmp_path / "call.pth")
    with_args = glob("models.utils.config", "BaseConfig") + tup(i(1)) + b"\x81" + _value({}) + b"b"
    gan_file(tmp_path / "args.pth", with_args, parts)
    with pytest.raises(UnsafeCheckpointError, match="NEWOBJ"):  # __new__ with arguments is not a plain restore
        load_object(tmp_path / "args.pth")
    odd_state = glob("models.utils.config", "BaseConfig") + b")\x81" + i(3) + b"b"
    gan_file(tmp_path / "odd.pth", odd_state, parts)
    with pytest.raises(CheckpointError, match="not a dict of attribute names"):
        load_object(tmp_path / "odd.pth")
    assert "models" not in sys.modules


def test_dcgan_loads_with_tanh_and_running_batchnorm_statistics(http_server, tmp_path, monkeypatch):
    gen = DCGANGenerator(5, 3, 4, 2)
    parts = {"netG": _random_state(gen, 7), "avgG": _random_state(gen, 8), "netD": {}}
    _serve(http_server, monkeypatch, "dcgan-fashiongen", gan_file(tmp_path / "d.pth", DCGAN_CONFIG, parts),
           builder=lambda **kw: DCGAN(dimLatentVector=3, dimG=2, depth=1, **kw))  # fmt: skip
    model = hubkit.load("dcgan-fashiongen", pretrained=True)
    assert model.image_size == (32, 32) and model.latent_dim == 5 and model.avgG.tanh
    assert list(model.avgG.main.state_dict())[:2] == ["batchNorm0.weight", "batchNorm0.bias"]
    z, _ = model.build_noise_data(4, seed=0)
    out = model.test(z, getAvG=True).numpy()
    assert out.shape == (4, 3, 32, 32) and np.abs(out).max() <= 1
    one = model.test(z[:1], getAvG=True).numpy()
    np.testing.assert_allclose(one[0], out[0], rtol=1e-5, atol=1e-6)  # eval BatchNorm: no batch dependence
    images = model.sample(4, seed=0).numpy()
    np.testing.assert_array_equal(images, out)
    with pytest.raises(ShapeError, match=r"\(N, 5\)"):
        model.avgG(hubkit.zeros(2, 4))


def test_build_noise_data_for_an_ac_gan_and_its_arguments():
    order = {"Texture": {"order": 1, "values": ["banded", "dotted", "striped"]},
             "Colour": {"order": 0, "values": ["red", "blue"]}}  # fmt: skip
    model = ProgressiveGAN(dimLatentVector=4, depthScale0=4, attribKeysOrder=order)
    assert model.latent_dim == 9 and [name for name, _ in model.attributes] == ["Colour", "Texture"]
    z, targets = model.buildNoiseData(6, seed=0, labels={"Texture": "dotted"})
    z, targets = z.numpy(), targets.numpy()
    assert z.shape == (6, 9) and targets.shape == (6, 2)
    assert (z[:, 4:6].sum(1) == 1).all() and (z[:, 6:] == [0, 1, 0]).all() and (targets[:, 1] == 1).all()
    np.testing.assert_array_equal(z[np.arange(6), 4 + targets[:, 0].astype(int)], 1)
    assert model.sample(2, seed=0).shape == (2, 3, 4, 4)
    with pytest.raises(ArgumentError, match="Colour, Texture"):
        model.build_noise_data(1, labels={"Shape": "round"})
    with pytest.raises(ArgumentError, match="banded"):
        model.build_noise_data(1, labels={"Texture": "plaid"})
    plain = ProgressiveGAN(dimLatentVector=4, depthScale0=4)
    z, _ = plain.build_noise_data(400, seed=0, truncation=0.5)
    assert np.abs(z.numpy()).max() <= 0.5 and np.abs(z.numpy()).max() > 0.4
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ArgumentError, match="positive int"):
            plain.sample(bad)
    with pytest.raises(ArgumentError, match="truncation"):
        plain.sample(1, truncation=0)
    with pytest.raises(ArgumentError, match="no config field"):
        ProgressiveGAN(depthScale=4)
    with pytest.raises(ShapeError, match=r"\(N, 4\)"):
        plain(hubkit.zeros(1, 5))


# ---------------------------------------------------------------- registry, grid, CLI


def test_the_registry_lists_the_published_generators_with_their_files():
    assert hubkit.list_models(task="image-generation") == ["dcgan-fashiongen", "pgan-celeba", "pgan-celebahq-256",
                                                           "pgan-celebahq-512", "pgan-dtd"]  # fmt: skip
    assert hubkit.list_models(modality="generative") == hubkit.list_models(task="image-generation")
    info = hubkit.model_info("pgan-celebahq-512")
    (w,) = info["weights"]
    assert w["url"] == "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ16_december_s7_i96000-9c72988c.pth"
    assert w["sha256_prefix"] == "9c72988c" and w["size"] is None and w["license"] == "BSD-3-Clause"
    assert w["preprocessing"] == {"kind": "image-generation", "latent_dim": 512, "image_size": 512,
                                  "output_range": [-1.0, 1.0]}  # fmt: skip
    names = hubkit.list_models(modality="generative")
    prefixes = {n: hubkit.model_info(n)["weights"][0]["sha256_prefix"] for n in names}
    assert prefixes == {"pgan-celebahq-256": "6196db68", "pgan-dtd": "04efa39f", "pgan-celeba": "2b0acc76",
                        "pgan-celebahq-512": "9c72988c", "dcgan-fashiongen": None}  # fmt: skip
    assert hubkit.model_info("dcgan-fashiongen")["weights"][0]["url"].endswith("/gan_zoo/DCGAN_fashionGen-1d67302.pth")
    assert registry.get_entry("pgan-dtd").checkpoint_object
    model = hubkit.load("pgan-celebahq-512")  # architecture only: the file name's 7 scales, pgan_config's depths
    assert model.image_size == (512, 512) and model.training
    assert sum(p.numel() for p in model.netG.parameters()) == w["num_params"]
    with pytest.raises(ArgumentError, match="image-generat"):  # latents in, no preprocessing to give
        hubkit.get_weights("pgan-celebahq-512").transforms()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _png_pixels(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of an 8-bit RGB PNG (Pillow when installed, else the filter-0 rows hubkit writes)."""
    try:
        from PIL import Image
    except ImportError:
        width, height = _png_size(path)
        data = path.read_bytes()
        start = data.index(b"IDAT") + 4
        rows = np.frombuffer(zlib.decompress(data[start:data.index(b"IEND") - 8]), np.uint8)
        return rows.reshape(height, -1)[:, 1:].reshape(height, width, 3)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_generate_images_writes_a_png_grid_of_the_expected_size(http_server, tmp_path, monkeypatch):
    _serve(http_server, monkeypatch, "pgan-celebahq-256", gan_file(tmp_path / "p.pth", PGAN_CONFIG, _pgan_parts()),
           builder=_tiny_pgan)  # fmt: skip
    out = tasks.generate_images("pgan-celebahq-256", 5, seed=0, out=tmp_path / "grid.png", nrow=3)
    assert out == tmp_path / "grid.png"
    assert _png_size(out) == (3 * (16 + 2) + 2, 2 * (16 + 2) + 2)
    pixels = _png_pixels(out)
    assert (pixels[:2] == 0).all() and (pixels[:, :2] == 0).all()  # the padding
    for k in range(5):  # scale_each: every image stretched to the full 0..255 range
        r, c = divmod(k, 3)
        cell = pixels[2 + r * 18:2 + r * 18 + 16, 2 + c * 18:2 + c * 18 + 16]
        assert cell.min() == 0 and cell.max() == 255
    assert (pixels[20:, 2 + 2 * 18:] == 0).all()  # the sixth cell stays empty
    again = tasks.generate_images("pgan-celebahq-256", 5, seed=0, out=tmp_path / "again.png", nrow=3)
    assert np.abs(_png_pixels(again).astype(int) - pixels).max() <= 1  # the same images (up to rounding)
    with pytest.raises(ArgumentError, match="image generator"):
        tasks.generate_images("resnet18", 2, out=tmp_path / "x.png")
    with pytest.raises(ArgumentError, match="positive int"):
        tasks.generate_images("pgan-celebahq-256", 0, out=tmp_path / "x.png")
    with pytest.raises(ArgumentError, match="does not exist"):
        tasks.generate_images("pgan-celebahq-256", 1, out=tmp_path / "missing" / "x.png")
    assert http_server.count("/gan_zoo/pgan-celebahq-256.pth") == 1  # errors are found before any download


def test_cli_generate_writes_the_grid_for_an_image_generator(http_server, tmp_path, monkeypatch, capsys):
    from hubkit.cli import main

    _serve(http_server, monkeypatch, "pgan-celebahq-256", gan_file(tmp_path / "p.pth", PGAN_CONFIG, _pgan_parts()),
           builder=_tiny_pgan)  # fmt: skip
    out = tmp_path / "grid.png"
    assert main(["generate", "pgan-celebahq-256", "--n", "4", "--out", str(out), "--seed", "0"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert _png_size(out) == (4 * 18 + 2, 18 + 2)
    reference = tasks.generate_images("pgan-celebahq-256", 4, 0, tmp_path / "ref.png")  # (name, n, seed, out)
    assert np.abs(_png_pixels(reference).astype(int) - _png_pixels(out)).max() <= 1
    assert main(["generate", "pgan-celebahq-256", "a prompt"]) == 1
    assert "takes no prompt" in capsys.readouterr().err
    assert main(["generate", "resnet18"]) == 1
    assert "image generators: dcgan-fashiongen, pgan-celeba" in capsys.readouterr().err
    assert main(["info", "pgan-celebahq-512"]) == 0
    text = capsys.readouterr().out
    assert "generative / image-generation" in text and "9c72988c... (prefix" in text
    assert "512x512 RGB images in [-1.0, 1.0] from 512-d N(0, 1) latents" in text


# ---------------------------------------------------------------- parity with the GAN zoo's code, in torch


def _torch_gan_zoo():
    """The GAN zoo's generators re-written in torch from their published semantics (custom_layers.py,
    progressive_conv_net.py, DCGAN_nets.py): equalized layers keep the wrapped layer as `.module` and scale its
    output; pixel norm; Upscale2d by view/expand; the alpha fade-in of the previous scale's RGB output."""
    import torch
    from torch import nn

    class Constrained(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module
            self.weight = math.sqrt(2.0 / np.prod(module.weight.shape[1:]))

        def forward(self, x):
            return self.module(x) * self.weight

    def pixel_norm(x):
        return x * ((x**2).mean(dim=1, keepdim=True) + 1e-8).rsqrt()

    def upscale(x):
        n, c, h, w = x.shape
        return x.view(n, c, h, 1, w, 1).expand(n, c, h, 2, w, 2).contiguous().view(n, c, 2 * h, 2 * w)

    class GNet(nn.Module):
        def __init__(self, latent, depth0, others, alpha=0.0, tanh=False, leak=0.2):
            super().__init__()
            self.scaleLayers = nn.ModuleList()
            self.toRGBLayers = nn.ModuleList([Constrained(nn.Conv2d(depth0, 3, 1))])
            self.formatLayer = Constrained(nn.Linear(latent, 16 * depth0))
            self.groupScale0 = nn.ModuleList([Constrained(nn.Conv2d(depth0, depth0, 3, padding=1))])
            last = depth0
            for d in others:
                self.scaleLayers.append(nn.ModuleList([Constrained(nn.Conv2d(last, d, 3, padding=1)),
                                                       Constrained(nn.Conv2d(d, d, 3, padding=1))]))
                self.toRGBLayers.append(Constrained(nn.Conv2d(d, 3, 1)))
                last = d
            self.alpha, self.tanh, self.leak = alpha, tanh, leak

        def forward(self, x):
            act = nn.LeakyReLU(self.leak)
            x = pixel_norm(x).view(len(x), -1)
            x = pixel_norm(act(self.formatLayer(x)).view(len(x), -1, 4, 4))
            for conv in self.groupScale0:
                x = pixel_norm(act(conv(x)))
            if self.alpha > 0 and len(self.scaleLayers) == 1:
                y = upscale(self.toRGBLayers[-2](x))
            for scale, group in enumerate(self.scaleLayers):
                x = upscale(x)
                for conv in group:
                    x = pixel_norm(act(conv(x)))
                if self.alpha > 0 and scale == len(self.scaleLayers) - 2:
                    y = upscale(self.toRGBLayers[-2](x))
            x = self.toRGBLayers[-1](x)
            if self.alpha > 0:
                x = self.alpha * y + (1.0 - self.alpha) * x
            return torch.tanh(x) if self.tanh else x

    class DCGNet(nn.Module):
        def __init__(self, latent, dim_g, depth):
            super().__init__()
            c = dim_g * 2**depth
            self.formatLayer = nn.ConvTranspose2d(latent, c, 4, 1, 0, bias=False)
            seq = {"batchNorm0": nn.BatchNorm2d(c), "relu0": nn.ReLU(True)}
            for k in range(1, depth + 1):
                seq[f"convTranspose{k}"] = nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False)
                seq[f"batchNorm{k}"] = nn.BatchNorm2d(c // 2)
                seq[f"relu{k}"] = nn.ReLU(True)
                c //= 2
            seq["outlayer"] = nn.ConvTranspose2d(dim_g, 3, 4, 2, 1, bias=False)
            self.main = nn.Sequential(OrderedDict(seq))

        def forward(self, x):
            return torch.tanh(self.main(self.formatLayer(x.view(-1, x.size(1), 1, 1))))

    return torch, GNet, DCGNet


@pytest.fixture
def stand_in_base_config(monkeypatch):
    """A stand-in for upstream's models.utils.config.BaseConfig (an empty attribute bag), importable under that
    name so that torch.save pickles it exactly as the GAN zoo's files do."""
    modules = {name: types.ModuleType(name) for name in ("models", "models.utils", "models.utils.config")}

    class BaseConfig:
        pass

    BaseConfig.__module__, BaseConfig.__qualname__ = "models.utils.config", "BaseConfig"
    modules["models.utils.config"].BaseConfig = BaseConfig
    modules["models"].utils, modules["models.utils"].config = modules["models.utils"], modules["models.utils.config"]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return BaseConfig


def _torch_checkpoint(torch, stand_in, path: Path, fields: dict, parts: dict) -> bytes:
    config = stand_in()
    config.__dict__.update(fields)
    torch.save({"config": config, **parts}, path)
    return path.read_bytes()


@pytest.mark.parity
@pytest.mark.parametrize(("others", "alpha", "loss"), [((6, 4), 0.0, "WGANGP"), ((6, 4), 0.3, "WGANGP"),
                                                       ((5,), 0.6, "MSE")])  # fmt: skip
def test_pgan_matches_the_gan_zoo_generator_in_torch(http_server, tmp_path, monkeypatch, stand_in_base_config,
                                                     others, alpha, loss):
    torch, GNet, _ = _torch_gan_zoo()
    torch.manual_seed(0)
    fields = {**PGAN_CONFIG, "depthOtherScales": list(others), "alpha": alpha, "lossCriterion": loss}
    net, avg = (GNet(6, 8, others, alpha, loss == "MSE") for _ in range(2))
    for module in (net, avg):
        for p in module.parameters():
            torch.nn.init.normal_(p)
    data = _torch_checkpoint(torch, stand_in_base_config, tmp_path / "pgan.pth", fields,
                             {"netG": net.state_dict(), "netD": {}, "avgG": avg.state_dict()})
    assert torch.load(tmp_path / "pgan.pth", weights_only=False)["config"].depthScale0 == 8  # upstream's layout
    _serve(http_server, monkeypatch, "pgan-celebahq-512", data, builder=_tiny_pgan)
    monkeypatch.delitem(sys.modules, "models")  # hubkit never needs the class
    model = hubkit.load("pgan-celebahq-512", pretrained=True)
    z = torch.randn(5, 6)
    with torch.no_grad():
        want_avg, want_net = avg(z).numpy(), net(z).numpy()
    got = hubkit.from_numpy(z.numpy())
    np.testing.assert_allclose(model.test(got, getAvG=True).numpy(), want_avg, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.test(got).numpy(), want_net, rtol=1e-4, atol=1e-4)


@pytest.mark.parity
def test_the_hand_built_file_reads_like_torch_save(tmp_path, stand_in_base_config):
    torch, _, _ = _torch_gan_zoo()
    parts = _pgan_parts()
    gan_file(tmp_path / "raw.pth", PGAN_CONFIG, parts)
    _torch_checkpoint(torch, stand_in_base_config, tmp_path / "torch.pth", PGAN_CONFIG,
                      {p: {k: torch.from_numpy(v) for k, v in state.items()} for p, state in parts.items()})
    raw, saved = (load_object(tmp_path / n, tensor=lambda d: d.array) for n in ("raw.pth", "torch.pth"))
    assert raw["config"] == saved["config"] and raw.keys() == saved.keys()
    for part in parts:
        for key in parts[part]:
            np.testing.assert_array_equal(raw[part][key], saved[part][key])
    back = torch.load(tmp_path / "raw.pth", weights_only=False)  # torch reads the hand-built bytes too
    assert vars(back["config"]) == PGAN_CONFIG


@pytest.mark.parity
def test_dcgan_matches_the_gan_zoo_generator_in_torch(http_server, tmp_path, monkeypatch, stand_in_base_config):
    torch, _, DCGNet = _torch_gan_zoo()
    torch.manual_seed(1)
    net, avg = DCGNet(5, 4, 2), DCGNet(5, 4, 2)
    for module in (net, avg):
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.normal_()
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
        for p in module.parameters():
            torch.nn.init.normal_(p, 0, 0.3)
    data = _torch_checkpoint(torch, stand_in_base_config, tmp_path / "dcgan.pth", DCGAN_CONFIG,
                             {"netG": net.state_dict(), "netD": {}, "avgG": avg.state_dict()})
    _serve(http_server, monkeypatch, "dcgan-fashiongen", data,
           builder=lambda **kw: DCGAN(dimLatentVector=3, dimG=2, depth=1, **kw))  # fmt: skip
    model = hubkit.load("dcgan-fashiongen", pretrained=True)
    z = torch.randn(3, 5)
    with torch.no_grad():
        want = avg.eval()(z).numpy()
    np.testing.assert_allclose(model.test(hubkit.from_numpy(z.numpy()), getAvG=True).numpy(), want, rtol=1e-4,
                               atol=1e-4)  # fmt: skip
