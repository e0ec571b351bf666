"""``hubkit.backends``: the flags PyTorch code reads or sets under ``torch.backends``.

``mps`` (Apple Metal) is never available in hubkit. ``cudnn`` and ``cuda.matmul`` hold the flags
training scripts set (``benchmark``, ``deterministic``, ``allow_tf32``); hubkit's GPU kernels are
cupy/cuBLAS kernels without cuDNN, deterministic by construction, and compute in full FP32.
"""

from hubkit.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
