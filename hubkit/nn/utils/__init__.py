"""``hubkit.nn.utils``: PyTorch's ``torch.nn.utils`` (gradient clipping, parameter vectors, ...)."""

from hubkit.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters
