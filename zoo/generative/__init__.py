"""hubkit.zoo.generative: image generators from the PyTorch Hub, with upstream's checkpoints and state-dict keys.

Importing this package registers the GAN zoo's (facebookresearch/pytorch_GAN_zoo) published generators with
``hubkit.hub.registry``: progressive GANs ``pgan-celebahq-256``, ``pgan-celebahq-512``, ``pgan-dtd``,
``pgan-celeba`` and the DCGAN ``dcgan-fashiongen``::

    model = hubkit.load("pgan-celebahq-512", pretrained=True)
    images = model.sample(4, seed=0)                     # (4, 3, 512, 512) in [-1, 1]
    hubkit.utils.save_image(images, "faces.png", normalize=True, scale_each=True)

or from the shell: ``hubkit generate pgan-celebahq-512 --n 4 --out grid.png``. The PyTorch Hub page's own code
(``noise, _ = model.buildNoiseData(4)``; ``model.test(noise)``) runs unchanged on these objects.
"""

from hubkit.zoo.generative._gan import GANZooModel, gan_zoo_keys
from hubkit.zoo.generative.dcgan import DCGAN, DCGANGenerator, dcgan_fashiongen
from hubkit.zoo.generative.pgan import (
    EqualizedConv2d,
    EqualizedLinear,
    PGANGenerator,
    PixelNorm,
    ProgressiveGAN,
    pgan_celeba,
    pgan_celebahq_256,
    pgan_celebahq_512,
    pgan_dtd,
)

__all__ = [
    "DCGAN",
    "DCGANGenerator",
    "EqualizedConv2d",
    "EqualizedLinear",
    "GANZooModel",
    "PGANGenerator",
    "PixelNorm",
    "ProgressiveGAN",
    "dcgan_fashiongen",
    "gan_zoo_keys",
    "pgan_celeba",
    "pgan_celebahq_256",
    "pgan_celebahq_512",
    "pgan_dtd",
]
