"""The GAN zoo's progressive GAN (Karras et al. 2018) as the PyTorch Hub serves it:
``torch.hub.load('facebookresearch/pytorch_GAN_zoo:hub', 'PGAN', model_name=..., pretrained=True)``.

    model = hubkit.load("pgan-celebahq-512", pretrained=True)
    images = model.sample(4, seed=0)          # (4, 3, 512, 512) in [-1, 1]

Generator keys are upstream's (models/networks/progressive_conv_net.py ``GNet``): ``formatLayer.module.weight``,
``groupScale0.0.module.bias``, ``scaleLayers.{s}.{0|1}.module.weight``, ``toRGBLayers.{s}.module.weight``; the hub
object holds two of them, ``netG`` and its moving average ``avgG``, whose keys are those under ``netG.``/``avgG.``.
The architecture comes from the checkpoint's saved config (``depthScale0``, ``depthOtherScales``, ...), as upstream's
``load_state_dict`` rebuilds it; a registry entry's builder only pre-builds the architecture its file name
implies (``s7`` = 7 scales above 4x4 = 512x512) with the default depths of upstream's ``pgan_config.py``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import hubkit.nn.functional as F
from hubkit import nn
from hubkit.errors import ArgumentError, ShapeError
from hubkit.hub.registry import GenerationPreprocessing, WeightTag, register_model
from hubkit.nn import init
from hubkit.tensor import Tensor
from hubkit.zoo.generative._gan import GANZooModel, last_activation

__all__ = ["EqualizedConv2d", "EqualizedLinear", "PGANGenerator", "PixelNorm", "ProgressiveGAN", "pgan_celeba",
           "pgan_celebahq_256", "pgan_celebahq_512", "pgan_dtd"]


class _Equalized(nn.Module):
    """Upstream's ``ConstrainedLayer``: a layer (``self.module``) whose output, bias included, is multiplied at run
    time by He's constant ``sqrt(2 / fan_in)``, its weights drawn from N(0, 1) (equalized learning rate). With
    ``equalized=False`` it is the plain layer."""

    def __init__(self, module: nn.Module, equalized: bool, init_bias_to_zero: bool) -> None:
        super().__init__()
        self.module = module
        self.equalized = equalized
        if init_bias_to_zero:
            init.zeros_(module.bias)
        fan_in = math.prod(module.weight.shape[1:])
        self.scale = math.sqrt(2.0 / fan_in) if equalized else 1.0
        if equalized:
            init.normal_(module.weight, 0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        y = self.module(x)
        return y * self.scale if self.equalized else y

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}" if self.equalized else "equalized=False"


class EqualizedConv2d(_Equalized):
    """``Conv2d(in_channels, out_channels, kernel_size, padding=padding)`` with the equalized learning rate:
    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H', W')``; parameters ``module.weight``, ``module.bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, *,
                 equalized: bool = True, init_bias_to_zero: bool = True) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding), equalized,
                         init_bias_to_zero)


class EqualizedLinear(_Equalized):
    """``Linear(in_features, out_features)`` with the equalized learning rate: ``(N, in)`` -> ``(N, out)``."""

    def __init__(self, in_features: int, out_features: int, *, equalized: bool = True,
                 init_bias_to_zero: bool = True) -> None:
        super().__init__(nn.Linear(in_features, out_features), equalized, init_bias_to_zero)


class PixelNorm(nn.Module):
    """Upstream's ``NormalizationLayer``: each position's feature vector scaled to unit mean square,
    ``x * rsqrt(mean(x^2, dim=1) + 1e-8)``; ``(N, C, ...)`` -> same shape."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * ((x * x).mean(dim=1, keepdim=True) + self.eps).rsqrt()


class PGANGenerator(nn.Module):
    """The progressive GAN generator (upstream's ``GNet``) with all its scales added.

    A latent ``(N, latent_dim)`` (or ``(N, latent_dim, 1, 1)``) is pixel-normalized, mapped by ``formatLayer`` to
    ``(N, depth_scale0, 4, 4)``, refined by ``groupScale0`` (3x3 conv), then each further scale doubles the side
    (nearest neighbour) and applies two 3x3 convs of ``depth_other_scales[s]`` channels; every conv and the format
    layer are followed by LeakyReLU and, with ``normalization``, pixel norm. ``toRGBLayers[-1]`` (1x1 conv) gives the
    image ``(N, dim_output, 4 * 2**S, 4 * 2**S)``; with ``alpha > 0`` it is blended with the upsampled image of the
    scale below (``alpha * low + (1 - alpha) * high``, the fade-in of training); ``tanh`` ends with tanh.
    """

    def __init__(self, latent_dim: int = 512, depth_scale0: int = 512, depth_other_scales: tuple[int, ...] = (), *,
                 leaky_relu_leak: float = 0.2, normalization: bool = True, tanh: bool = False, dim_output: int = 3,
                 equalized_lr: bool = True, init_bias_to_zero: bool = True, alpha: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ArgumentError(f"alpha must be in [0, 1], got {alpha!r}")
        layer = {"equalized": equalized_lr, "init_bias_to_zero": init_bias_to_zero}
        self.latent_dim = latent_dim
        self.scales_depth = [depth_scale0, *depth_other_scales]
        self.formatLayer = EqualizedLinear(latent_dim, 16 * depth_scale0, **layer)
        self.groupScale0 = nn.ModuleList([EqualizedConv2d(depth_scale0, depth_scale0, 3, padding=1, **layer)])
        self.scaleLayers = nn.ModuleList()
        self.toRGBLayers = nn.ModuleList([EqualizedConv2d(depth_scale0, dim_output, 1, **layer)])
        for previous, depth in zip(self.scales_depth, self.scales_depth[1:]):
            self.scaleLayers.append(nn.ModuleList([EqualizedConv2d(previous, depth, 3, padding=1, **layer),
                                                   EqualizedConv2d(depth, depth, 3, padding=1, **layer)]))
            self.toRGBLayers.append(EqualizedConv2d(depth, dim_output, 1, **layer))
        # upstream sets alpha only once a scale was added (ProgressiveGAN.getNetG): no blend at scale 0
        self.alpha = float(alpha) if depth_other_scales else 0.0
        self.leaky_relu_leak = leaky_relu_leak
        self.norm = PixelNorm() if normalization else None
        self.tanh = tanh

    @property
    def output_size(self) -> tuple[int, int]:
        side = 4 * 2 ** len(self.scaleLayers)
        return side, side

    def _act(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(x, self.leaky_relu_leak)
        return self.norm(x) if self.norm is not None else x

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim not in (2, 4) or z.shape[1] != self.latent_dim or (z.ndim == 4 and z.shape[2:] != (1, 1)):
            raise ShapeError(f"the generator takes latents (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1), "
                             f"got {tuple(z.shape)}; draw them with build_noise_data(n)")
        if self.norm is not None:
            z = self.norm(z)
        x = self._act(self.formatLayer(z.reshape(z.shape[0], -1)).reshape(z.shape[0], -1, 4, 4))
        for conv in self.groupScale0:
            x = self._act(conv(x))
        low = None
        blend_after = len(self.scaleLayers) - 2  # the scale whose RGB image is faded out (-1: scale 0's)
        if self.alpha > 0 and blend_after == -1:
            low = F.interpolate(self.toRGBLayers[-2](x), scale_factor=2, mode="nearest")
        for s, group in enumerate(self.scaleLayers):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for conv in group:
                x = self._act(conv(x))
            if self.alpha > 0 and s == blend_after:
                low = F.interpolate(self.toRGBLayers[-2](x), scale_factor=2, mode="nearest")
        x = self.toRGBLayers[-1](x)
        if low is not None:
            x = low * self.alpha + x * (1.0 - self.alpha)
        return x.tanh() if self.tanh else x

    def extra_repr(self) -> str:
        return (f"latent_dim={self.latent_dim}, scales_depth={self.scales_depth}, output_size={self.output_size}, "
                f"alpha={self.alpha}, tanh={self.tanh}")


class ProgressiveGAN(GANZooModel):
    """The hub object of upstream's ``ProgressiveGAN``: ``netG``, ``avgG`` and ``config``, with ``sample``,
    ``test`` and ``build_noise_data`` (see ``GANZooModel``). Keyword arguments are config fields with upstream's
    names and defaults (``dimLatentVector=512``, ``depthScale0=512``, ``depthOtherScales=[]``, ``lossCriterion=
    "WGANGP"``, ...); a loaded checkpoint's config replaces them."""

    GENERATOR = PGANGenerator
    # models/progressive_gan.py constructor defaults (upstream's `leakyness` argument is saved as leakyReluLeak)
    DEFAULTS: dict[str, Any] = {"dimLatentVector": 512, "depthScale0": 512, "depthOtherScales": [],
                                "initBiasToZero": True, "leakyReluLeak": 0.2, "perChannelNormalization": True,
                                "miniBatchStdDev": False, "equalizedlR": True, "alpha": 0}

    def _generator_kwargs(self, config: SimpleNamespace) -> dict[str, Any]:
        return {"latent_dim": config.latentVectorDim, "depth_scale0": config.depthScale0,
                "depth_other_scales": tuple(config.depthOtherScales), "leaky_relu_leak": config.leakyReluLeak,
                "normalization": bool(config.perChannelNormalization), "dim_output": config.dimOutput,
                "tanh": last_activation(config.lossCriterion) == "tanh", "equalized_lr": bool(config.equalizedlR),
                "init_bias_to_zero": bool(config.initBiasToZero), "alpha": float(config.alpha)}


# pgan_config.py's depthScales [512, 512, 512, 512, 256, 128, 64, 32, 16]: the depths of scales 1..S.
_DEFAULT_DEPTHS = (512, 512, 512, 256, 128, 64, 32, 16)
_ZOO = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/"
_SOURCE = "https://github.com/facebookresearch/pytorch_GAN_zoo (hubconf.py, branch hub)"


def _entry(hub_name: str, file: str, side: int, num_params: int, recipe: str) -> dict[str, Any]:
    """The registry entry of one published PGAN: torch.hub's ``model_name``, the file under gan_zoo/PGAN/, the
    image side, the parameters of one generator of the builder's architecture (the checkpoint's own config
    decides the loaded one) and what it draws."""
    # The 8 hex digits ending the file name are its sha256 prefix (torch.hub's naming); upstream publishes no byte
    # size, so size=None, and the first download records the full sha256 for every later use.
    tag = WeightTag(tag="GAN_ZOO", url=_ZOO + file, sha256_prefix=file.rsplit("-", 1)[1].removesuffix(".pth"),
                    num_params=num_params, preprocessing=GenerationPreprocessing(latent_dim=512, image_size=side),
                    num_classes=0, license="BSD-3-Clause", source=_SOURCE, recipe=recipe)
    return {"modality": "generative", "task": "image-generation", "weights": (tag,), "default": "GAN_ZOO",
            "checkpoint_object": True, "paper": "https://arxiv.org/abs/1710.10196",
            "description": f"Progressive GAN, {side}x{side} {recipe.split(',')[0]} (PyTorch Hub: GAN zoo PGAN, "
                           f"model_name={hub_name!r}); model.sample(n, seed)"}


def _pgan(scales: int, **kwargs: Any) -> ProgressiveGAN:
    return ProgressiveGAN(**{"depthOtherScales": list(_DEFAULT_DEPTHS[:scales]), **kwargs})


@register_model("pgan-celebahq-256", **_entry("celebAHQ-256", "celebaHQ_s6_i80000-6196db68.pth", 256, 23_051_989,
                                              "faces (CelebA-HQ), scale 6 after 80,000 iterations"))
def pgan_celebahq_256(**kwargs: Any) -> ProgressiveGAN:
    """PGAN for CelebA-HQ at 256x256 (``model_name='celebAHQ-256'``, the hub's default)."""
    return _pgan(6, **kwargs)


@register_model("pgan-celebahq-512", **_entry("celebAHQ-512", "celebaHQ16_december_s7_i96000-9c72988c.pth", 512,
                                              23_079_800, "faces (CelebA-HQ), scale 7 after 96,000 iterations"))
def pgan_celebahq_512(**kwargs: Any) -> ProgressiveGAN:
    """PGAN for CelebA-HQ at 512x512 (``model_name='celebAHQ-512'``)."""
    return _pgan(7, **kwargs)


@register_model("pgan-dtd", **_entry("DTD", "testDTD_s5_i96000-04efa39f.pth", 128, 22_941_074,
                                     "textures (Describable Textures Dataset), scale 5 after 96,000 iterations"))
def pgan_dtd(**kwargs: Any) -> ProgressiveGAN:
    """PGAN for the Describable Textures Dataset at 128x128 (``model_name='DTD'``)."""
    return _pgan(5, **kwargs)


@register_model("pgan-celeba", **_entry("celeba", "celebaCropped_s5_i83000-2b0acc76.pth", 128, 22_941_074,
                                        "faces (cropped CelebA), scale 5 after 83,000 iterations"))
def pgan_celeba(**kwargs: Any) -> ProgressiveGAN:
    """PGAN for cropped CelebA at 128x128 (``model_name='celeba'``)."""
    return _pgan(5, **kwargs)
