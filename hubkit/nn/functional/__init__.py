"""hubkit.nn.functional: the differentiable ops, by category (PyTorch's names and signatures)."""

from hubkit.nn.functional.attention import scaled_dot_product_attention
from hubkit.nn.functional.conv import conv1d, conv2d, conv_transpose2d
from hubkit.nn.functional.dropout import dropout
from hubkit.nn.functional.layer_norm import layer_norm
from hubkit.nn.functional.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from hubkit.nn.functional.normalization import batch_norm, cosine_similarity, group_norm, instance_norm, normalize
from hubkit.nn.functional.pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from hubkit.nn.functional.sparse import embedding
from hubkit.nn.functional.vision import interpolate, one_hot
from hubkit.ops.activation import (
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from hubkit.ops.elementwise import (
    abs,
    add,
    clamp,
    clip,
    div,
    eq,
    erf,
    exp,
    ge,
    gt,
    le,
    log,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from hubkit.ops.linalg import bmm, linear, matmul, mm
from hubkit.ops.reduction import argmax, argmin, cumsum, logsumexp, max, mean, min, std, sum, var
from hubkit.ops.shape import (
    cat,
    chunk,
    concat,
    expand,
    flatten,
    gather,
    masked_fill,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
    view,
)
