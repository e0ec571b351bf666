"""CPU kernels on numpy arrays: im2col/col2im, convolution, pooling, interpolation, batch norm, optimizers.

This module is the CPU side of the dispatcher in ``kernels/__init__.py``; the kernels live by family in
``cpu_conv.py`` (convolution; ``cpu_depthwise.py`` for depthwise layers),
``cpu_pool.py``, ``cpu_resample.py`` and ``cpu_norm.py``, with the optimizer updates shared with cupy in
``generic.py``. Where numba is installed (the ``hubkit[numba]`` extra), some of them call compiled loops
from ``_jit_kernels.py`` (see ``_jit.py``); the numpy code stays the reference and the fallback.

Conventions shared with ``cuda.py`` (same names, same signatures, same results):

- images are NCHW; ``kernel``, ``stride``, ``dilation`` are ``(y, x)`` pairs;
- convolution padding is ``pads = ((top, bottom), (left, right))`` so ``padding="same"`` with an even
  kernel (asymmetric) needs no special case; pooling padding is symmetric ``(py, px)``;
- the column matrix is in Caffe layout ``(C*KH*KW, N*OH*OW)``: rows ordered ``(c, ky, kx)``, so the rows
  of group ``g`` are one contiguous block, and the innermost axis (OW) stays contiguous with the image;
- kernels that split their batch over hubkit's thread pool (``_threads.py``) give bit-identical results
  for any thread count.
"""

from hubkit.kernels import cpu_attention, generic
from hubkit.kernels._threads import parallel_for
from hubkit.kernels.cpu_conv import col2im, conv2d, conv2d_backward, conv2d_grad_input, conv2d_grad_weight, im2col
from hubkit.kernels.cpu_elementwise import adam_update, scores_softmax_, sgd_update
from hubkit.kernels.cpu_norm import batch_norm_backward, batch_norm_forward
from hubkit.kernels.cpu_pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_indices,
)
from hubkit.kernels.cpu_resample import (
    upsample_bilinear2d,
    upsample_bilinear2d_backward,
    upsample_nearest2d,
    upsample_nearest2d_backward,
)

__all__ = [
    "adam_update", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward", "attention_backward", "attention_forward", "avg_pool2d", "avg_pool2d_backward",
    "batch_norm_backward", "batch_norm_forward", "col2im", "conv2d", "conv2d_backward", "conv2d_grad_input",
    "conv2d_grad_weight", "im2col", "max_pool2d", "max_pool2d_backward", "max_pool2d_indices", "sgd_update",
    "upsample_bilinear2d", "upsample_bilinear2d_backward", "upsample_nearest2d", "upsample_nearest2d_backward",
]  # fmt: skip


def attention_forward(q, k, v, scale, mask, keep, dropout_keep, dropout_p):
    """:func:`hubkit.kernels.generic.attention_forward`: float32 without dropout one head at a time in compiled code
    where numba is installed (``cpu_attention``), else by blocks of the batch on hubkit's pool, with the compiled
    float32 softmax where numba is installed."""
    if dropout_keep is None:
        done = cpu_attention.attention_forward(q, k, v, scale, mask, keep)
        if done is not None:
            return done
    return generic.attention_forward(q, k, v, scale, mask, keep, dropout_keep, dropout_p, split=parallel_for,
                                     softmax=scores_softmax_)  # fmt: skip


def attention_backward(gy, q, k, v, scale, attn, dropped, dropout_keep, dropout_p, needs):
    """:func:`hubkit.kernels.generic.attention_backward` by blocks of the batch on hubkit's pool."""
    return generic.attention_backward(gy, q, k, v, scale, attn, dropped, dropout_keep, dropout_p, needs,
                                      split=parallel_for)  # fmt: skip
