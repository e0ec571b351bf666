"""The GAN zoo's DCGAN (Radford et al. 2016) as the PyTorch Hub serves it: ``torch.hub.load(
'facebookresearch/pytorch_GAN_zoo:hub', 'DCGAN', pretrained=True)``, trained on FashionGen clothes.

    model = hubkit.load("dcgan-fashiongen", pretrained=True)
    images = model.sample(16, seed=0)          # (16, 3, 64, 64) in [-1, 1]

Generator keys are upstream's (models/networks/DCGAN_nets.py ``GNet``): ``formatLayer.weight``,
``main.batchNorm0.*``, ``main.convTranspose{i}.weight``, ``main.batchNorm{i}.*``, ``main.outlayer.weight``; the hub
object holds ``netG`` and its moving average ``avgG``. The architecture comes from the checkpoint's saved config
(``latentVectorDim``, ``dimG``, ``depth``, ``lossCriterion``). Loaded models are in eval mode, so BatchNorm uses its
running statistics; upstream's hub object is never switched to eval, so its ``test`` normalizes each batch by
the batch's own statistics instead.
"""

from __future__ import annotations

from collections import OrderedDict
from types import SimpleNamespace
from typing import Any

from hubkit import nn
from hubkit.errors import ShapeError
from hubkit.hub.registry import GenerationPreprocessing, WeightTag, register_model
from hubkit.nn import init
from hubkit.tensor import Tensor
from hubkit.zoo.generative._gan import GANZooModel, last_activation

__all__ = ["DCGAN", "DCGANGenerator", "dcgan_fashiongen"]


class DCGANGenerator(nn.Module):
    """The DCGAN generator (upstream's ``GNet``): ``(N, latent_dim)`` (or ``(N, latent_dim, 1, 1)``) ->
    ``(N, dim_output, 2**(depth + 3), 2**(depth + 3))``.

    ``formatLayer`` (4x4 transposed conv, stride 1) makes a 4x4 map of ``dim_g * 2**depth`` channels; ``main`` is
    BatchNorm + ReLU, then ``depth`` blocks of (4x4 transposed conv stride 2 halving the channels, BatchNorm,
    ReLU), then ``outlayer`` (4x4 transposed conv stride 2 to ``dim_output`` channels); ``tanh`` ends with tanh.
    No conv has a bias.
    """

    def __init__(self, latent_dim: int = 64, dim_output: int = 3, dim_g: int = 64, depth: int = 3, *,
                 tanh: bool = True) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.depth = depth
        channels = int(dim_g * 2**depth)
        self.formatLayer = nn.ConvTranspose2d(latent_dim, channels, 4, 1, 0, bias=False)
        layers: OrderedDict[str, nn.Module] = OrderedDict(batchNorm0=nn.BatchNorm2d(channels), relu0=nn.ReLU(True))
        for i in range(1, depth + 1):
            layers[f"convTranspose{i}"] = nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False)
            layers[f"batchNorm{i}"] = nn.BatchNorm2d(channels // 2)
            layers[f"relu{i}"] = nn.ReLU(True)
            channels //= 2
        layers["outlayer"] = nn.ConvTranspose2d(dim_g, dim_output, 4, 2, 1, bias=False)
        self.main = nn.Sequential(layers)
        self.tanh = tanh
        for module in self.main.modules():  # upstream's weights_init: main only, formatLayer keeps its default
            if isinstance(module, nn.ConvTranspose2d):
                init.normal_(module.weight, 0.0, 0.02)
            elif isinstance(module, nn.BatchNorm2d):
                init.normal_(module.weight, 1.0, 0.02)
                init.zeros_(module.bias)

    @property
    def output_size(self) -> tuple[int, int]:
        side = 2 ** (self.depth + 3)
        return side, side

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim not in (2, 4) or z.shape[1] != self.latent_dim or (z.ndim == 4 and z.shape[2:] != (1, 1)):
            raise ShapeError(f"the generator takes latents (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1), "
                             f"got {tuple(z.shape)}; draw them with build_noise_data(n)")
        x = self.main(self.formatLayer(z.reshape(z.shape[0], self.latent_dim, 1, 1)))
        return x.tanh() if self.tanh else x

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, depth={self.depth}, output_size={self.output_size}, tanh={self.tanh}"


class DCGAN(GANZooModel):
    """The hub object of upstream's ``DCGAN``: ``netG``, ``avgG`` and ``config``, with ``sample``, ``test`` and
    ``build_noise_data`` (see ``GANZooModel``). Keyword arguments are config fields with upstream's names and
    defaults (``dimLatentVector=64``, ``dimG=64``, ``depth=3``, ``lossCriterion="WGANGP"``); a loaded
    checkpoint's config replaces them."""

    GENERATOR = DCGANGenerator
    DEFAULTS: dict[str, Any] = {"dimLatentVector": 64, "dimG": 64, "dimD": 64, "depth": 3}  # models/DCGAN.py

    def _generator_kwargs(self, config: SimpleNamespace) -> dict[str, Any]:
        return {"latent_dim": config.latentVectorDim, "dim_output": config.dimOutput, "dim_g": config.dimG,
                "depth": config.depth, "tanh": last_activation(config.lossCriterion) == "tanh"}


# sha256_prefix=None: the name's "1d67302" has 7 hex digits, short of torch.hub's "eight or more digits of the
# SHA256" convention and of every other GAN zoo file, so it is not known to be a sha256 prefix (checking it could
# refuse the right file forever). The first download records the file's sha256; later uses are checked against it.
_FASHIONGEN = WeightTag(
    tag="GAN_ZOO", url="https://dl.fbaipublicfiles.com/gan_zoo/DCGAN_fashionGen-1d67302.pth", num_params=3_576_704,
    num_classes=0, preprocessing=GenerationPreprocessing(latent_dim=100, image_size=64), license="BSD-3-Clause",
    source="https://github.com/facebookresearch/pytorch_GAN_zoo (hubconf.py, branch hub)",
    recipe="clothes (FashionGen)",
)


@register_model(
    "dcgan-fashiongen", modality="generative", task="image-generation", weights=(_FASHIONGEN,), default="GAN_ZOO",
    checkpoint_object=True, paper="https://arxiv.org/abs/1511.06434",
    description="DCGAN, 64x64 clothes (PyTorch Hub: GAN zoo DCGAN, fashionGen); model.sample(n, seed)",
)
def dcgan_fashiongen(**kwargs: Any) -> DCGAN:
    """DCGAN for FashionGen clothes at 64x64, pre-built with dcgan_config.py's settings (100-d latent, dimG 64,
    depth 3, DCGAN loss: tanh output); the checkpoint's config decides the loaded architecture."""
    return DCGAN(**{"dimLatentVector": 100, "lossCriterion": "DCGAN", **kwargs})
