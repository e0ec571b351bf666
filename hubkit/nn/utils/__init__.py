"""``hubkit.nn.utils``: PyTorch's ``torch.nn.utils`` (gradient clipping, parameter vectors, ...)."""

from hubkit.nn.utils import parametrizations, parametrize, rnn
from hubkit.nn.utils.clip_grad import (
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)
from hubkit.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from hubkit.nn.utils.weight_norm import remove_weight_norm, weight_norm
