"""What the GAN zoo's hub objects share: the saved configuration, latent noise, sampling, and loading upstream's
checkpoint object.

facebookresearch/pytorch_GAN_zoo saves ``{"config": BaseConfig, "netG": ..., "netD": ..., "avgG": ...}`` with
``torch.save`` (models/base_GAN.py ``getStateDict``), and its ``load_state_dict`` reads that object: the config
first (the architecture follows from it), then the generator, its moving average and the discriminator. The
hubkit objects here do the same for the two generators; the discriminator is not built (they generate only), so
its weights are skipped. hubkit reads ``config`` as an ``AttributeRecord`` (see ``hub.checkpoint._torch_pickle``):
nothing of the GAN zoo is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np

from hubkit import nn
from hubkit.autograd import no_grad
from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError
from hubkit.hub.checkpoint.formats import AttributeRecord
from hubkit.ops.shape import cat
from hubkit.random import Generator, get_rng
from hubkit.tensor import Tensor

__all__ = ["GANZooModel", "gan_zoo_keys"]

# lossCriterion -> the generator's last activation (models/loss_criterions/base_loss_criterions.py:
# generationActivation); "WGANGP2" is an old spelling base_GAN.load renames to WGANGP.
_LAST_ACTIVATION = {"WGANGP": None, "WGANGP2": None, "Logistic": None, "DCGAN": "tanh", "MSE": "tanh"}

# BaseGAN's config fields and their constructor defaults (models/base_GAN.py), shared by PGAN and DCGAN.
BASE_DEFAULTS: dict[str, Any] = {"dimOutput": 3, "attribKeysOrder": None, "categoryVectorDim": 0,
                                 "lossCriterion": "WGANGP"}

# A forward pass generates at most this many output pixels (images x H x W): about 4 images at 512x512, whose
# activations and conv buffers then stay within a few hundred MB on a CPU, while small images still go in
# large batches. Each image's latent is drawn before any batch runs, so the split never changes the images.
_PIXELS_PER_BATCH = 2**20


def config_attributes(config: Any) -> dict[str, Any]:
    """A saved GAN zoo config (an ``AttributeRecord`` of ``models.utils.config.BaseConfig``, or a plain dict of
    its attributes) -> its attributes as a dict."""
    if isinstance(config, AttributeRecord):
        return dict(config.attributes)
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, SimpleNamespace):
        return dict(vars(config))
    raise CheckpointError(f"the checkpoint's 'config' is a {type(config).__name__}; the GAN zoo saves a "
                          "models.utils.config.BaseConfig instance (or pass a dict of its attributes)")


def last_activation(loss: Any) -> str | None:
    """``"tanh"`` or ``None``: what the generator trained with ``loss`` ends with."""
    if loss not in _LAST_ACTIVATION:
        raise CheckpointError(f"the checkpoint's config has lossCriterion={loss!r}; the GAN zoo's losses are "
                              f"{', '.join(_LAST_ACTIVATION)}")
    return _LAST_ACTIVATION[loss]


def gan_zoo_keys(state: Mapping[str, Any], expected: set[str]) -> dict[str, Any]:
    """Upstream's ``loadStateDictCompatible``: a generator state dict saved by any GAN zoo version -> the keys of
    the current layers (``expected``).

    Files saved from ``nn.DataParallel`` prefix every key with ``module.``; older versions saved an equalized
    layer's parameters without its ``.module`` (``formatLayer.weight`` for ``formatLayer.module.weight``).
    Keys that match neither rule are kept, so a strict load names them.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"a generator state dict has the key {key!r}; expected parameter names")
        name = key[len("module."):] if key.startswith("module.") and key not in expected else key
        if name not in expected:
            stem, _, leaf = name.rpartition(".")
            legacy = f"{stem}.module.{leaf}" if stem else f"module.{leaf}"
            if leaf in ("weight", "bias") and legacy in expected:
                name = legacy
        out[name] = value
    return out


def _attribute_table(attrib_keys_order: Any) -> list[tuple[str, list[Any]]]:
    """AC-GAN ``attribKeysOrder`` ``{name: {"order": i, "values": [...]}}`` -> ``[(name, values)]`` by order."""
    if attrib_keys_order is None:
        return []
    if not isinstance(attrib_keys_order, Mapping):
        raise CheckpointError(f"the checkpoint's attribKeysOrder is a {type(attrib_keys_order).__name__}; expected "
                              "a dict {attribute: {'order': i, 'values': [...]}}")
    rows: list[tuple[int, str, list[Any]]] = []
    for name, spec in attrib_keys_order.items():
        if not (isinstance(spec, Mapping) and isinstance(spec.get("order"), int)
                and isinstance(spec.get("values"), list | tuple) and spec["values"]):
            raise CheckpointError(f"the checkpoint's attribKeysOrder[{name!r}] is {spec!r}; expected "
                                  "{'order': int, 'values': [...]}")
        rows.append((spec["order"], name, list(spec["values"])))
    rows.sort(key=lambda row: row[0])
    if [row[0] for row in rows] != list(range(len(rows))):
        raise CheckpointError(f"the checkpoint's attribKeysOrder orders are {[row[0] for row in rows]}; expected "
                              f"0..{len(rows) - 1}")
    return [(name, values) for _, name, values in rows]


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], truncation: float | None) -> np.ndarray:
    """Standard normal float32 samples; with ``truncation`` every value beyond +-truncation is redrawn (BigGAN's
    truncation trick: fewer, more typical images)."""
    z = rng.standard_normal(shape, dtype=np.float32)
    if truncation is None:
        return z
    outside = np.abs(z) > truncation
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
        outside = np.abs(z) > truncation
    return z


class GANZooModel(nn.Module):
    """A GAN zoo hub object: the generator ``netG`` and its moving average ``avgG``, built from ``config``.

    ``config`` is a ``SimpleNamespace`` of upstream's field names (``config.depthScale0``, ...). Subclasses give
    ``DEFAULTS`` (the constructor defaults of upstream's model class), ``GENERATOR`` (the generator class) and
    ``_generator_kwargs(config)`` (its constructor arguments).
    """

    DEFAULTS: dict[str, Any]
    GENERATOR: type[nn.Module]

    def __init__(self, **config: Any) -> None:
        super().__init__()
        unknown = sorted(set(config) - set(self.DEFAULTS) - set(BASE_DEFAULTS) - {"noiseVectorDim",
                                                                                  "latentVectorDim"})
        if unknown:
            raise ArgumentError(f"{type(self).__name__} has no config field {', '.join(unknown)}; its fields: "
                                f"{', '.join(sorted({**BASE_DEFAULTS, **self.DEFAULTS}))}")
        self._build(self._resolve(config))

    # ---------------------------------------------------------------- configuration

    def _generator_kwargs(self, config: SimpleNamespace) -> dict[str, Any]:
        raise NotImplementedError

    def _resolve(self, fields: Mapping[str, Any]) -> SimpleNamespace:
        """``fields`` merged over the defaults, as upstream's ``updateConfig`` merges a saved config, and checked."""
        merged = {**BASE_DEFAULTS, **self.DEFAULTS, **fields}
        merged.setdefault("noiseVectorDim", merged.get("dimLatentVector"))
        categories = sum(len(values) for _, values in _attribute_table(merged["attribKeysOrder"]))
        merged.setdefault("latentVectorDim", merged["noiseVectorDim"] + categories)
        noise = merged["noiseVectorDim"]
        if not (isinstance(noise, int) and noise > 0 and merged["latentVectorDim"] == noise + categories):
            raise CheckpointError(f"the config's latentVectorDim ({merged['latentVectorDim']}) should be "
                                  f"noiseVectorDim ({noise}) plus the AC-GAN category dims ({categories})")
        return SimpleNamespace(**merged)

    def _build(self, config: SimpleNamespace) -> None:
        """Both generators for ``config``, on the device the model is on."""
        device = next((p.device for p in self.parameters()), None)
        kwargs = self._generator_kwargs(config)
        self.config = config
        self.netG = self.GENERATOR(**kwargs)
        self.avgG = self.GENERATOR(**kwargs)
        if device is not None:
            self.to(device)

    @property
    def attributes(self) -> list[tuple[str, list[Any]]]:
        """AC-GAN attributes ``[(name, values)]`` in latent order; empty for an unconditional GAN."""
        return _attribute_table(self.config.attribKeysOrder)

    @property
    def latent_dim(self) -> int:
        """Length of one latent vector: ``config.noiseVectorDim`` normal numbers plus the AC-GAN one-hot parts."""
        return self.config.latentVectorDim

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the generated images (upstream's ``getSize``)."""
        return self.netG.output_size

    # ---------------------------------------------------------------- generation

    def build_noise_data(self, n: int, *, seed: int | None = None, truncation: float | None = None,
                         labels: Mapping[str, Any] | None = None) -> tuple[Tensor, Tensor | None]:
        """Latent vectors for ``n`` images: ``(z, targets)``, as upstream's ``buildNoiseData``.

        ``z`` is ``(n, latent_dim)`` float32 on the model's device: ``config.noiseVectorDim`` standard-normal
        numbers, followed for an AC-GAN by one one-hot block per attribute. ``targets`` is ``(n, attributes)`` (the
        chosen value index of each attribute, float32) for an AC-GAN, else ``None``.

        Args:
            seed: draw from a generator seeded with it (the same images every time); ``None`` draws from hubkit's
                global generator (``hubkit.manual_seed``).
            truncation: redraw every noise value beyond +-truncation (a positive float; smaller means more typical
                images, less variety).
            labels: AC-GAN only: ``{attribute: value}`` fixing some attributes; the others are drawn at random.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ArgumentError(f"the number of images must be a positive int, got {n!r}")
        if truncation is not None and (isinstance(truncation, bool) or not isinstance(truncation, int | float)
                                       or not truncation > 0):
            raise ArgumentError(f"truncation must be a positive number (or None), got {truncation!r}")
        rng = get_rng(Generator(seed) if seed is not None else None)
        parts = [_truncated_normal(rng, (n, self.config.noiseVectorDim), truncation)]
        fixed = dict(labels or {})
        unknown = sorted(set(fixed) - {name for name, _ in self.attributes})
        if unknown:
            known = ", ".join(name for name, _ in self.attributes) or "none (this GAN is unconditional)"
            raise ArgumentError(f"labels name unknown attributes {unknown}; this model's attributes: {known}")
        targets = []
        for name, values in self.attributes:
            if name in fixed:
                if fixed[name] not in values:
                    raise ArgumentError(f"{fixed[name]!r} is not a value of the attribute {name!r}; its values: "
                                        f"{values}")
                index = np.full(n, values.index(fixed[name]))
            else:
                index = rng.integers(0, len(values), n)
            onehot = np.zeros((n, len(values)), np.float32)
            onehot[np.arange(n), index] = 1
            parts.append(onehot)
            targets.append(index.astype(np.float32))
        device = next(self.parameters()).device
        z = Tensor(np.concatenate(parts, axis=1), device=device)
        return z, (Tensor(np.stack(targets, axis=1), device=device) if targets else None)

    def buildNoiseData(self, n_samples: int, **kwargs: Any) -> tuple[Tensor, Tensor | None]:  # noqa: N802
        """Upstream's spelling of :meth:`build_noise_data`, so the PyTorch Hub page's code runs unchanged."""
        return self.build_noise_data(n_samples, **kwargs)

    def forward(self, z: Tensor) -> Tensor:
        """Images from the averaged generator ``avgG``: ``(N, latent_dim)`` -> ``(N, 3, H, W)`` (not clamped)."""
        return self.avgG(z)

    def test(self, input: Tensor, getAvG: bool = False, toCPU: bool = True) -> Tensor:  # noqa: A002, N803
        """Upstream's ``test``: ``netG(input)`` (``avgG`` with ``getAvG=True``) without autograd, on the CPU unless
        ``toCPU=False``. ``(N, latent_dim)`` -> ``(N, 3, H, W)``, not clamped."""
        generator = self.avgG if getAvG else self.netG
        with no_grad():
            out = generator(input.to(next(self.parameters()).device))
        return out.cpu() if toCPU else out

    def sample(self, n: int, seed: int | None = None, truncation: float | None = None) -> Tensor:
        """``n`` new images ``(n, 3, H, W)`` float32 in [-1, 1], on the model's device.

        The averaged generator ``avgG`` draws them (upstream advises it; the published weights include it), from
        :meth:`build_noise_data` ``(n, seed=seed, truncation=truncation)``; values are clamped to [-1, 1] as the
        PyTorch Hub page does before showing them. ``seed`` makes the draw repeatable; image ``i`` of a seeded
        draw does not depend on ``n``.
        """
        z, _ = self.build_noise_data(n, seed=seed, truncation=truncation)
        height, width = self.image_size
        step = max(1, _PIXELS_PER_BATCH // (height * width))
        with no_grad():
            images = [self.avgG(z[start:start + step]) for start in range(0, n, step)]
        out = images[0] if len(images) == 1 else cat(images, dim=0)
        return out.clamp(-1.0, 1.0)

    # ---------------------------------------------------------------- loading

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load upstream's checkpoint object or a flat state dict.

        Upstream's object (``{"config", "netG", "avgG", "netD", ...}``, what ``torch.load`` of a GAN zoo file
        gives, and what ``hubkit.load`` hands over): the config rebuilds both generators, then ``netG`` and
        ``avgG`` load strictly (keys mapped by :func:`gan_zoo_keys`); a file without ``avgG`` gets a copy of
        ``netG``, as upstream's ``buildAvG`` makes one. ``netD`` (and the training state ``tmp``) are skipped:
        there is no discriminator here. A flat ``{"netG.<key>": ..., "avgG.<key>": ...}`` dict, as
        ``state_dict()`` returns, loads into the current architecture.
        """
        if not isinstance(state_dict, Mapping):
            raise ArgumentTypeError(f"expected a checkpoint object or a state dict, got a {type(state_dict).__name__}")
        if "config" not in state_dict:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        extra = sorted(k for k in state_dict if k not in ("config", "netG", "avgG", "netD", "tmp"))
        if "netG" not in state_dict or (strict and extra):
            raise CheckpointError(f"a GAN zoo checkpoint holds 'config', 'netG', 'netD' and 'avgG'; this one holds "
                                  f"{sorted(map(str, state_dict))}")
        config = self._resolve(config_attributes(state_dict["config"]))
        if self._generator_kwargs(config) != self._generator_kwargs(self.config):
            self._build(config)  # else the layers fit already: keep them, skip initialising two generators again
        self.config = config
        expected = set(self.netG.state_dict())
        flat: dict[str, Any] = {}
        for part in ("netG", "avgG"):
            state = state_dict.get(part, state_dict["netG"])
            if not isinstance(state, Mapping):
                raise CheckpointError(f"the checkpoint's {part!r} is a {type(state).__name__}, not a state dict")
            flat.update((f"{part}.{k}", v) for k, v in gan_zoo_keys(state, expected).items())
        return super().load_state_dict(flat, strict=strict, assign=assign)
