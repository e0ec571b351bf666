"""Raw-array kernels: one thin dispatcher over ``cpu.py`` (numpy) and ``cuda.py`` (cupy).

Each function here forwards to the module with the same function name, picked by the type of its first
array argument, so ops never test for the device themselves. cupy is imported only when a cupy array
arrives, never for numpy inputs. Signatures and layouts are documented in ``cpu.py``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

_modules: dict[type, ModuleType] = {}  # array type -> its kernel module (every op asks: no import per call)


def kernels_for(array: Any) -> ModuleType:
    """The kernel module (``hubkit.kernels.cpu`` or ``hubkit.kernels.cuda``) for ``array``'s device."""
    module = _modules.get(type(array))
    if module is None:
        name = "hubkit.kernels.cuda" if type(array).__module__.startswith("cupy") else "hubkit.kernels.cpu"
        module = _modules[type(array)] = importlib.import_module(name)
    return module


def matmul(a, b, bias=None):
    """``a @ b`` (``+ bias`` on every row when given); on the CPU, large products are split over hubkit's kernel
    threads (``_threads.matmul``)."""
    if type(a).__module__.startswith("cupy"):
        y = a @ b
        if bias is not None:
            y += bias
        return y
    from hubkit.kernels._threads import matmul as threaded

    return threaded(a, b, bias=bias)


def bias_grad(g):
    """``g`` (N, C, *) summed over every axis but 1: a convolution's bias gradient (compiled per-channel sums on
    the CPU where numba is installed, ``cpu_norm.channel_sum``)."""
    if isinstance(g, np.ndarray):
        from hubkit.kernels.cpu_norm import channel_sum

        return channel_sum(g)
    return g.sum(axis=(0,) + tuple(range(2, g.ndim)))


def attention_forward(q, k, v, scale, mask, keep, dropout_keep, dropout_p):
    return kernels_for(q).attention_forward(q, k, v, scale, mask, keep, dropout_keep, dropout_p)


def attention_backward(gy, q, k, v, scale, attn, dropped, dropout_keep, dropout_p, needs):
    return kernels_for(gy).attention_backward(gy, q, k, v, scale, attn, dropped, dropout_keep, dropout_p, needs)


def im2col(x, kernel, stride, pads, dilation, pad_value=0.0):
    return kernels_for(x).im2col(x, kernel, stride, pads, dilation, pad_value)


def col2im(col, x_shape, kernel, stride, pads, dilation):
    return kernels_for(col).col2im(col, x_shape, kernel, stride, pads, dilation)


def conv2d(x, w, b, stride, pads, dilation, groups, keep_columns=False):
    return kernels_for(x).conv2d(x, w, b, stride, pads, dilation, groups, keep_columns)


def conv2d_grad_input(gy, w, in_hw, stride, pads, dilation, groups):
    return kernels_for(gy).conv2d_grad_input(gy, w, in_hw, stride, pads, dilation, groups)


def conv2d_backward(x, gy, w, w_shape, in_hw, stride, pads, dilation, groups, columns, need_x, need_w):
    """``(gx or None, gw or None)`` of ``conv2d`` (``w`` may be None without ``need_x``); one kernel call where
    the device has one (the CPU shares work between the two), else the two gradient kernels."""
    mod = kernels_for(gy)
    if hasattr(mod, "conv2d_backward"):
        return mod.conv2d_backward(x, gy, w, w_shape, in_hw, stride, pads, dilation, groups, columns, need_x, need_w)
    args = (stride, pads, dilation, groups)
    gx = mod.conv2d_grad_input(gy, w, in_hw, *args) if need_x else None
    gw = mod.conv2d_grad_weight(x, gy, tuple(w_shape[2:]), *args, columns) if need_w else None
    return gx, gw


def conv2d_grad_weight(x, gy, kernel, stride, pads, dilation, groups, columns=None):
    return kernels_for(gy).conv2d_grad_weight(x, gy, kernel, stride, pads, dilation, groups, columns)


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, with_argmax):
    return kernels_for(x).max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, with_argmax)


def max_pool2d_indices(argmax, in_hw, kernel, stride, padding, dilation):
    return kernels_for(argmax).max_pool2d_indices(argmax, in_hw, kernel, stride, padding, dilation)


def max_pool2d_backward(gy, argmax, in_hw, kernel, stride, padding, dilation, ceil_mode):
    return kernels_for(gy).max_pool2d_backward(gy, argmax, in_hw, kernel, stride, padding, dilation, ceil_mode)


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    return kernels_for(x).avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool2d_backward(gy, in_hw, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    return kernels_for(gy).avg_pool2d_backward(
        gy, in_hw, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def adaptive_avg_pool2d(x, out_hw):
    return kernels_for(x).adaptive_avg_pool2d(x, out_hw)


def adaptive_avg_pool2d_backward(gy, in_hw):
    return kernels_for(gy).adaptive_avg_pool2d_backward(gy, in_hw)


def adaptive_max_pool2d(x, out_hw):
    return kernels_for(x).adaptive_max_pool2d(x, out_hw)


def adaptive_max_pool2d_backward(gy, indices, in_hw):
    return kernels_for(gy).adaptive_max_pool2d_backward(gy, indices, in_hw)


def upsample_nearest2d(x, out_hw, scales):
    return kernels_for(x).upsample_nearest2d(x, out_hw, scales)


def upsample_nearest2d_backward(gy, in_hw, scales):
    return kernels_for(gy).upsample_nearest2d_backward(gy, in_hw, scales)


def upsample_bilinear2d(x, out_hw, align_corners, scales):
    return kernels_for(x).upsample_bilinear2d(x, out_hw, align_corners, scales)


def upsample_bilinear2d_backward(gy, in_hw, align_corners, scales):
    return kernels_for(gy).upsample_bilinear2d_backward(gy, in_hw, align_corners, scales)


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps, keep_xhat):
    return kernels_for(x).batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                             keep_xhat)  # fmt: skip


def batch_norm_backward(gy, xhat, inv_std, weight, training, need_x, need_w, need_b):
    return kernels_for(gy).batch_norm_backward(gy, xhat, inv_std, weight, training, need_x, need_w, need_b)


def sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize):
    return kernels_for(p).sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize)


def sgd_update_many(ps, gs, bufs, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """:func:`sgd_update` over lists of parameters, gradients and buffers (one launch on the GPU, torch's
    foreach path); returns the buffers to keep."""
    many = getattr(kernels_for(ps[0]), "sgd_update_many", None)
    if many is not None:
        return many(ps, gs, bufs, lr, momentum, dampening, weight_decay, nesterov, maximize)
    return [sgd_update(p, g, b, lr, momentum, dampening, weight_decay, nesterov, maximize)
            for p, g, b in zip(ps, gs, bufs)]  # fmt: skip


def adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled,
                maximize):  # fmt: skip
    return kernels_for(p).adam_update(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                                      weight_decay, decoupled, maximize)  # fmt: skip
