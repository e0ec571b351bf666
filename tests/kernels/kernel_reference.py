"""Naive, obviously-correct reference implementations (explicit loops, float64) for the kernel tests."""

from __future__ import annotations

import math

import numpy as np


def conv2d(x, w, b, stride, pads, dilation, groups):
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    (pt, pb), (pl, pr) = pads
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt : pt + h, pl : pl + wd] = x
    oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    ocg = oc // groups
    y = np.zeros((n, oc, oh, ow))
    for o in range(oc):
        g = o // ocg
        for i in range(oh):
            for j in range(ow):
                for ky in range(kh):
                    for kx in range(kw):
                        patch = xp[
                            :, g * cg : (g + 1) * cg, i * stride[0] + ky * dilation[0], j * stride[1] + kx * dilation[1]
                        ]
                        y[:, o, i, j] += patch @ w[o, :, ky, kx]
        if b is not None:
            y[:, o] += b[o]
    return y


def pool_out(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode):
    """Returns values and PyTorch-style flat indices."""
    n, c, h, w = x.shape
    oh = pool_out(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = pool_out(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    y = np.full((n, c, oh, ow), -np.inf)
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            for ky in range(kernel[0]):
                for kx in range(kernel[1]):
                    r = i * stride[0] - padding[0] + ky * dilation[0]
                    q = j * stride[1] - padding[1] + kx * dilation[1]
                    if 0 <= r < h and 0 <= q < w:
                        v = x[:, :, r, q]
                        better = v > y[:, :, i, j]
                        y[:, :, i, j] = np.where(better, v, y[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, r * w + q, idx[:, :, i, j])
    return y, idx


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    n, c, h, w = x.shape
    oh = pool_out(h, kernel[0], stride[0], padding[0], 1, ceil_mode)
    ow = pool_out(w, kernel[1], stride[1], padding[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, q0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
            r1, q1 = min(r0 + kernel[0], h + padding[0]), min(q0 + kernel[1], w + padding[1])
            size = (r1 - r0) * (q1 - q0)
            r0c, q0c, r1c, q1c = max(r0, 0), max(q0, 0), min(r1, h), min(q1, w)
            total = x[:, :, r0c:r1c, q0c:q1c].sum(axis=(2, 3))
            if divisor_override:
                size = divisor_override
            elif not count_include_pad:
                size = (r1c - r0c) * (q1c - q0c)
            y[:, :, i, j] = total / size
    return y


def adaptive_pool2d(x, out_hw, reduce):
    n, c, h, w = x.shape
    oh, ow = out_hw
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * h) // oh, math.ceil((i + 1) * h / oh)
            q0, q1 = (j * w) // ow, math.ceil((j + 1) * w / ow)
            y[:, :, i, j] = reduce(x[:, :, r0:r1, q0:q1], axis=(2, 3))
    return y


def bilinear(x, out_hw, align_corners):
    n, c, h, w = x.shape
    oh, ow = out_hw

    def src(i, insz, outsz):
        if align_corners:
            return i * (insz - 1) / (outsz - 1) if outsz > 1 else 0.0
        return max((i + 0.5) * insz / outsz - 0.5, 0.0)

    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        sy = src(i, h, oh)
        y0 = min(int(math.floor(sy)), h - 1)
        y1, ly = min(y0 + 1, h - 1), sy - y0
        for j in range(ow):
            sx = src(j, w, ow)
            x0 = min(int(math.floor(sx)), w - 1)
            x1, lx = min(x0 + 1, w - 1), sx - x0
            y[:, :, i, j] = (1 - ly) * ((1 - lx) * x[:, :, y0, x0] + lx * x[:, :, y0, x1]) + ly * (
                (1 - lx) * x[:, :, y1, x0] + lx * x[:, :, y1, x1]
            )
    return y
