"""wav2vec 2.0 on a CUDA device gives the CPU's emissions and gradients. Skipped without a GPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import hubkit
from hubkit.zoo.audio import LIBRISPEECH_LABELS, Wav2Vec2Config, Wav2Vec2Model

pytestmark = pytest.mark.gpu


def test_wav2vec2_on_cuda_matches_the_cpu():
    config = Wav2Vec2Config(conv_layers=((16, 10, 5), (16, 3, 2), (16, 2, 2)), embed_dim=32, pos_conv_kernel=8,
                            pos_conv_groups=4, num_layers=2, num_heads=4, ffn_dim=48, dropout=0.0,
                            attention_dropout=0.0, aux_num_out=len(LIBRISPEECH_LABELS))  # fmt: skip
    hubkit.manual_seed(0)
    model = Wav2Vec2Model(config, labels=LIBRISPEECH_LABELS).train()
    gpu = copy.deepcopy(model).to("cuda")
    audio = (np.random.default_rng(0).standard_normal((2, 400)) * 0.1).astype(np.float32)
    outs = []
    for m in (model, gpu):
        y = m(audio)
        outs.append(y.cpu().detach().numpy())
        (y**2).sum().backward()
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    cpu_params = dict(model.named_parameters())
    for key, p in gpu.named_parameters():
        np.testing.assert_allclose(p.grad.cpu().numpy(), cpu_params[key].grad.numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=key)  # fmt: skip
    assert gpu.transcribe(audio) == model.transcribe(audio)
