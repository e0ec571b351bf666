"""``hubkit.backends``: the flags PyTorch code reads or sets under ``torch.backends``.

``mps`` (Apple Metal) is never available in hubkit. ``cudnn`` holds the flags training scripts set
(``benchmark``, ``deterministic``, ``allow_tf32``), which hubkit's GPU convolutions follow when NVIDIA's
cuDNN wheel is installed; ``cuda.matmul.allow_tf32`` stays False: matrix products compute in full FP32.
``mkl`` says whether the CPU products run on Intel MKL (the optional ``mkl`` extra).
"""

from hubkit.backends import cuda, cudnn, mkl, mps

__all__ = ["cuda", "cudnn", "mkl", "mps"]
