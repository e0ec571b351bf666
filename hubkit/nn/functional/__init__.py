"""hubkit.nn.functional: the differentiable ops, by category (PyTorch's names and signatures)."""

from hubkit.nn.functional.attention import scaled_dot_product_attention
from hubkit.nn.functional.bilinear import bilinear
from hubkit.nn.functional.conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    fold,
    unfold,
)
from hubkit.nn.functional.distance import pairwise_distance, pdist
from hubkit.nn.functional.dropout import (
    alpha_dropout,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)
from hubkit.nn.functional.fractional import (
    fractional_max_pool2d,
    fractional_max_pool2d_with_indices,
    fractional_max_pool3d,
    fractional_max_pool3d_with_indices,
)
from hubkit.nn.functional.grid import affine_grid, grid_sample
from hubkit.nn.functional.layer_norm import layer_norm, rms_norm
from hubkit.nn.functional.linear_cross_entropy import linear_cross_entropy
from hubkit.nn.functional.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll_loss,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
)
from hubkit.nn.functional.loss_ctc import ctc_loss
from hubkit.nn.functional.loss_margin import (
    cosine_embedding_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from hubkit.nn.functional.mha import multi_head_attention_forward
from hubkit.nn.functional.misc import assert_int_or_pair, gumbel_softmax
from hubkit.nn.functional.normalization import (
    batch_norm,
    cosine_similarity,
    group_norm,
    instance_norm,
    local_response_norm,
    normalize,
)
from hubkit.nn.functional.pooling import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d,
    adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d,
    adaptive_max_pool3d_with_indices,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool1d,
    max_pool1d_with_indices,
    max_pool2d,
    max_pool2d_with_indices,
    max_pool3d,
    max_pool3d_with_indices,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
)
from hubkit.nn.functional.sparse import embedding, embedding_bag
from hubkit.nn.functional.vision import (
    channel_shuffle,
    interpolate,
    one_hot,
    pixel_shuffle,
    pixel_unshuffle,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)
from hubkit.ops.activation import (
    celu,
    celu_,
    elu,
    elu_,
    gelu,
    glu,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    hardtanh_,
    leaky_relu,
    leaky_relu_,
    log_softmax,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    relu_,
    rrelu,
    rrelu_,
    selu,
    selu_,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softshrink,
    softsign,
    tanh,
    tanhshrink,
    threshold,
    threshold_,
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


def __getattr__(name: str) -> object:
    from hubkit.ops import unsupported

    if name in unsupported.NN_FUNCTIONAL:  # documented by torch, not provided: say so (UnsupportedError)
        raise unsupported.unsupported_error(f"torch.nn.functional.{name}")
    raise AttributeError(f"module 'hubkit.nn.functional' has no attribute {name!r}")
