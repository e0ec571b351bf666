"""BERT on a CUDA device gives the CPU's hidden states, pooled output and gradients. Skipped without a GPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import hubkit
from hubkit.zoo.text import BertConfig, SentenceEncoder

pytestmark = pytest.mark.gpu


def test_bert_on_cuda_matches_the_cpu():
    hubkit.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=48, max_position_embeddings=16, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)  # fmt: skip
    model = SentenceEncoder(config).train()
    gpu = copy.deepcopy(model).to("cuda")
    ids = np.array([[2, 7, 9, 11, 3, 0], [2, 5, 3, 0, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    for m in (model, gpu):
        m.eval()
        with hubkit.no_grad():
            m.out = m(ids, mask).cpu().numpy()
        m.train()
        (m(ids, mask) ** 2).sum().backward()
    np.testing.assert_allclose(gpu.out, model.out, rtol=1e-4, atol=1e-5)
    cpu_params = dict(model.named_parameters())
    unused = [k for k, p in gpu.named_parameters() if p.grad is None]
    assert unused == [k for k, p in cpu_params.items() if p.grad is None]
    assert unused == ["pooler.dense.weight", "pooler.dense.bias"]
    for key, p in gpu.named_parameters():
        if key in unused:
            continue
        np.testing.assert_allclose(p.grad.cpu().numpy(), cpu_params[key].grad.numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=key)  # fmt: skip


def test_encode_on_cuda_matches_the_cpu(tmp_path):
    from hubkit.zoo.text.tokenizers import BertTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "."]))
    hubkit.manual_seed(1)
    config = BertConfig(vocab_size=11, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=8)  # fmt: skip
    model = SentenceEncoder(config, max_seq_length=8)
    gpu = copy.deepcopy(model).to("cuda")
    model.tokenizer = gpu.tokenizer = BertTokenizer.from_file(vocab)
    sentences = ["the cat sat on the mat.", "the mat", "cat"]
    np.testing.assert_allclose(gpu.encode(sentences), model.encode(sentences), rtol=1e-4, atol=1e-5)


def test_gpt2_generation_on_cuda_matches_the_cpu():
    from hubkit.zoo.text.gpt2 import GPT2Config, GPT2LMHeadModel

    hubkit.manual_seed(2)
    config = GPT2Config(vocab_size=90, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2)
    model = GPT2LMHeadModel(config).eval()
    gpu = copy.deepcopy(model).to("cuda")
    assert gpu.lm_head.weight is gpu.transformer.wte.weight  # deepcopy keeps the tie
    prompt = np.array([3, 14, 15, 9, 26])
    with hubkit.no_grad():
        np.testing.assert_allclose(gpu(prompt[None]).logits.cpu().numpy(), model(prompt[None]).logits.numpy(),
                                   rtol=1e-4, atol=1e-4)  # fmt: skip
    want = model.generate(prompt, 24, eos_token_id=None)
    np.testing.assert_array_equal(gpu.generate(prompt, 24, eos_token_id=None), want)
    np.testing.assert_array_equal(gpu.generate(prompt, 8, eos_token_id=None, use_cache=False),
                                  model.generate(prompt, 8, eos_token_id=None))  # fmt: skip
