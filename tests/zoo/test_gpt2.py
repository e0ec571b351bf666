"""GPT-2 without torch: Hugging Face's keys and Conv1D layout, the key/value cache, generation (greedy, sampling,
stop strings, streaming), perplexity, the pretrained path through the local HTTP server, and ``hubkit generate``."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

import hubkit
from hubkit.errors import ArgumentError, ArgumentTypeError, ShapeError
from hubkit.hub import api, registry, save_checkpoint
from hubkit.zoo.text.generation import process_logits
from hubkit.zoo.text.gpt2 import GPT2Config, GPT2LMHeadModel, hf_gpt2_state
from hubkit.zoo.text.tokenizer_json import TokenizerFast

TOKENIZER = Path(__file__).resolve().parents[1] / "data" / "tokenizer_json" / "gpt2.json"  # 600 byte-level BPE tokens
TINY = GPT2Config(vocab_size=600, n_positions=48, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2,
                  bos_token_id=0, eos_token_id=0)  # fmt: skip


def _model(seed: int = 0, config: GPT2Config = TINY, tokenizer: bool = True) -> GPT2LMHeadModel:
    hubkit.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    if tokenizer:
        model.tokenizer = TokenizerFast.from_file(TOKENIZER, backend="python")
    return model


def _logits(model: GPT2LMHeadModel, ids) -> np.ndarray:
    with hubkit.no_grad():
        return model(np.asarray(ids)).logits.numpy()


def test_state_dict_keys_are_hugging_faces_and_the_head_is_tied():
    model = _model(tokenizer=False)
    keys = list(model.state_dict())
    block = ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
             "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
             "mlp.c_proj.bias"]  # fmt: skip
    assert keys == (["transformer.wte.weight", "transformer.wpe.weight"]
                    + [f"transformer.h.{i}.{k}" for i in range(2) for k in block]
                    + ["transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"])  # fmt: skip
    assert model.lm_head.weight is model.transformer.wte.weight
    # Conv1D keeps the weight as (in, out): c_attn is (32, 96), the transpose of nn.Linear's layout
    assert tuple(model.transformer.h[0].attn.c_attn.weight.shape) == (32, 96)
    unique = {id(p): p for p in model.parameters()}.values()
    c = TINY
    assert sum(p.numel() for p in unique) == (c.vocab_size * c.n_embd + c.n_positions * c.n_embd
                                              + c.n_layer * (12 * c.n_embd**2 + 13 * c.n_embd) + 2 * c.n_embd)


def test_conv1d_is_x_at_w_plus_b():
    conv = _model(tokenizer=False).transformer.h[0].mlp.c_fc
    x = np.random.default_rng(0).standard_normal((2, 3, 32)).astype(np.float32)
    with hubkit.no_grad():
        got = conv(hubkit.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, x @ conv.weight.numpy() + conv.bias.numpy(), rtol=1e-5, atol=1e-5)


def test_a_gpt2model_checkpoint_with_mask_buffers_loads_through_the_key_map():
    source = _model(seed=1, tokenizer=False)
    state = {k[len("transformer."):]: v.numpy().copy() for k, v in source.state_dict().items()
             if k.startswith("transformer.")}  # fmt: skip
    for i in range(TINY.n_layer):  # older files carry the causal mask and the legacy masked_bias
        state[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 48, 48), dtype=np.float32))
        state[f"h.{i}.attn.masked_bias"] = np.array(-1e4, dtype=np.float32)
    target = _model(seed=2, tokenizer=False)
    target.load_state_dict(hf_gpt2_state(state), strict=True)
    ids = [[5, 17, 300, 2]]
    np.testing.assert_array_equal(_logits(target, ids), _logits(source, ids))


def test_the_cache_gives_the_logits_of_the_full_sequence():
    model = _model(tokenizer=False)
    ids = np.random.default_rng(0).integers(1, 600, (1, 12))
    full = _logits(model, ids)
    with hubkit.no_grad():
        out = model(ids[:, :5], use_cache=True)
        steps = [out.logits.numpy()]
        cache = out.past_key_values
        assert len(cache) == 5
        for t in range(5, 12):
            out = model(ids[:, t : t + 1], past_key_values=cache)
            steps.append(out.logits.numpy())
    assert len(cache) == 12
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-4, atol=1e-5)


def test_padding_mask_keeps_real_positions_unchanged():
    model = _model(tokenizer=False)
    ids = np.array([[7, 8, 9, 10]])
    alone = _logits(model, ids)
    with hubkit.no_grad():
        padded = model(np.array([[7, 8, 9, 10, 0, 0]]), attention_mask=np.array([[1, 1, 1, 1, 0, 0]])).logits.numpy()
    np.testing.assert_allclose(padded[:, :4], alone, rtol=1e-5, atol=1e-5)


def test_greedy_generation_is_the_same_with_and_without_the_cache():
    model = _model(tokenizer=False)
    prompt = np.array([3, 141, 59, 265])
    cached = model.generate(prompt, 32, eos_token_id=None)
    uncached = model.generate(prompt, 32, eos_token_id=None, use_cache=False)
    assert cached.shape == (36,) and cached.dtype == np.int64
    np.testing.assert_array_equal(cached, uncached)
    assert len(set(cached[4:].tolist())) > 3  # not a degenerate repetition
    # every greedy token is the arg-max of the full-sequence logits
    logits = _logits(model, cached[None, :-1])[0, 3:]
    np.testing.assert_array_equal(logits.argmax(axis=-1), cached[4:])
    assert model.generate(prompt[None, :], 3, eos_token_id=None).shape == (1, 7)  # (1, T) in, (1, T) out
    np.testing.assert_array_equal(model.generate(prompt, 0), prompt)


def test_generation_stops_at_the_end_of_sequence_token():
    model = _model(tokenizer=False)
    prompt = [3, 141, 59]
    first = int(model.generate(prompt, 1, eos_token_id=None)[-1])
    out = model.generate(prompt, 10, eos_token_id=first)
    assert out.tolist() == prompt + [first]


def test_sampling_is_seeded_and_filtered():
    model = _model(tokenizer=False)
    prompt = [3, 141, 59]
    a = model.generate(prompt, 12, do_sample=True, seed=7, eos_token_id=None)
    b = model.generate(prompt, 12, do_sample=True, seed=7, eos_token_id=None)
    c = model.generate(prompt, 12, do_sample=True, seed=8, eos_token_id=None, top_k=0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    greedy = model.generate(prompt, 12, eos_token_id=None)
    np.testing.assert_array_equal(model.generate(prompt, 12, do_sample=True, top_k=1, seed=1, eos_token_id=None),
                                  greedy)  # fmt: skip
    np.testing.assert_array_equal(model.generate(prompt, 12, do_sample=True, top_p=1e-6, seed=1, eos_token_id=None),
                                  greedy)  # fmt: skip


def test_logits_processors_follow_transformers():
    scores = np.array([2.0, -1.0, 1.0, 1.0, 0.5], dtype=np.float32)
    seen = np.array([0, 1, 1])
    penalized = process_logits(scores, seen, do_sample=False, temperature=1, top_k=0, top_p=1, repetition_penalty=2)
    np.testing.assert_allclose(penalized, [1.0, -2.0, 1.0, 1.0, 0.5])  # positive /2, negative *2, once each
    top2 = process_logits(scores, seen[:0], do_sample=True, temperature=1, top_k=2, top_p=1, repetition_penalty=1)
    assert np.isinf(top2).tolist() == [False, True, False, False, True]  # ties at the k-th score survive
    hot = process_logits(scores, seen[:0], do_sample=True, temperature=0.5, top_k=0, top_p=1, repetition_penalty=1)
    np.testing.assert_allclose(hot, scores * 2)
    distinct = np.array([2.0, -1.0, 1.0, 0.9, 0.5], dtype=np.float32)
    nucleus = process_logits(distinct, seen[:0], do_sample=True, temperature=1, top_k=0, top_p=0.6,
                             repetition_penalty=1)  # fmt: skip
    probs = np.exp(distinct) / np.exp(distinct).sum()  # 0.507, 0.025, 0.186, 0.169, 0.113
    assert probs[0] < 0.6 < probs[0] + probs[2]  # the smallest set holding 60% of the mass
    assert np.isfinite(nucleus).tolist() == [True, False, True, False, False]


def test_text_generation_streams_and_stops():
    model = _model()
    text = model.generate("Hello world", 16, eos_token_id=None)
    assert text.startswith("Hello world") and len(text) > len("Hello world")
    pieces = list(model.stream("Hello world", 16, eos_token_id=None))
    assert "".join(pieces) == text[len("Hello world"):] and len(pieces) > 1
    seen: list[str] = []
    assert model.generate("Hello world", 16, eos_token_id=None, callback=seen.append) == text
    assert seen == pieces
    continuation = text[len("Hello world"):]
    stop = continuation[3:6]
    cut = model.generate("Hello world", 16, eos_token_id=None, stop=[stop, "\x00never"])
    assert cut == "Hello world" + continuation[: continuation.index(stop)]
    assert "".join(model.stream("Hello world", 16, eos_token_id=None, stop=stop)) == cut[len("Hello world"):]
    ids = model.generate(model.tokenizer.encode("Hello world"), 16, eos_token_id=None, stop=stop)
    assert model.tokenizer.decode(ids).startswith(cut) and len(ids) < len(model.tokenizer.encode(text))


def test_generate_says_what_is_wrong():
    model = _model()
    with pytest.raises(ArgumentError, match="do_sample=False"):
        model.generate("Hi", 3, do_sample=True, temperature=0.0)
    with pytest.raises(ArgumentError, match="top_p"):
        model.generate("Hi", 3, do_sample=True, top_p=0.0)
    with pytest.raises(ArgumentError, match="max_new_tokens"):
        model.generate("Hi", -1)
    with pytest.raises(ArgumentTypeError, match="top_k"):
        model.generate("Hi", 3, top_k=2.5)
    with pytest.raises(ArgumentError, match="48 positions"):
        model.generate("Hi", 100)
    with pytest.raises(ShapeError, match="one sequence"):
        model.generate(np.array([[1, 2], [3, 4]]), 3)
    with pytest.raises(ArgumentError, match="empty"):
        model.generate([], 3)
    with pytest.raises(ArgumentTypeError, match="stop"):
        model.generate("Hi", 3, stop=[""])
    with pytest.raises(ArgumentError, match="tokenizer"):
        _model(tokenizer=False).generate("Hi", 3)


def test_perplexity_is_the_exponentiated_mean_negative_log_likelihood():
    model = _model()
    ids = np.random.default_rng(1).integers(1, 600, 20)
    logits = _logits(model, ids[None])[0].astype(np.float64)
    log_probs = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(
        1, keepdims=True)  # fmt: skip
    want = math.exp(-log_probs[np.arange(19), ids[1:]].mean())
    assert model.perplexity(ids) == pytest.approx(want, rel=1e-5)
    text = "The quick brown fox jumps over the lazy dog."
    assert model.perplexity(text) == pytest.approx(model.perplexity(model.tokenizer.encode(text)), rel=1e-6)
    with pytest.raises(ArgumentError, match="at least 2 tokens"):
        model.perplexity([5])


def test_perplexity_of_long_texts_slides_a_window():
    config = dataclasses.replace(TINY, n_positions=16)
    model = _model(config=config, tokenizer=False)
    ids = np.random.default_rng(2).integers(1, 600, 40)
    nll, count = 0.0, 0
    for begin, first in ((0, 1), (8, 16), (16, 24), (24, 32)):  # stride 8, window 16: each token scored once
        end = min(begin + 16, 40)
        logits = _logits(model, ids[None, begin:end])[0].astype(np.float64)
        for t in range(first, end):
            row = logits[t - 1 - begin]
            nll += math.log(np.exp(row - row.max()).sum()) + row.max() - row[ids[t]]
            count += 1
    assert count == 39
    assert model.perplexity(ids, stride=8) == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert model.perplexity(ids) > 0
    with pytest.raises(ArgumentError, match="stride"):
        model.perplexity(ids, stride=17)


def test_training_backpropagates_into_every_parameter():
    model = _model(tokenizer=False).train()
    out = model(np.array([[1, 2, 3, 4, 5]]))
    out.logits.sum().backward()
    assert [k for k, p in model.named_parameters() if p.grad is None] == []


def _serve_tiny_gpt2(http_server, tmp_path, monkeypatch):
    """Point gpt2's tag at a tiny random model (stored like the hub file: no prefix, mask buffers) and the tiny
    tokenizer on the local server."""
    api._ensure_zoo()
    entry = registry.get_entry("gpt2")
    source = _model(seed=4, tokenizer=False)
    state = {k[len("transformer."):]: v.numpy().copy() for k, v in source.state_dict().items()
             if k.startswith("transformer.")}  # fmt: skip
    state["h.0.attn.bias"] = np.tril(np.ones((1, 1, 48, 48), dtype=np.float32))
    ckpt = tmp_path / "model.safetensors"
    save_checkpoint(state, ckpt, format="safetensors")
    data, tok = ckpt.read_bytes(), TOKENIZER.read_bytes()
    (tag,) = entry.weights
    files = (dataclasses.replace(tag.files[0], url=http_server.add("/gpt2/tokenizer.json", tok),
                                 sha256=hashlib.sha256(tok).hexdigest(), size=len(tok)),)  # fmt: skip
    tag = dataclasses.replace(tag, url=http_server.add("/gpt2/model.safetensors", data),
                              sha256=hashlib.sha256(data).hexdigest(), size=len(data), files=files)  # fmt: skip
    monkeypatch.setitem(registry._REGISTRY, "gpt2",
                        dataclasses.replace(entry, weights=(tag,), builder=lambda **kw: GPT2LMHeadModel(TINY)))
    return source


def test_pretrained_gpt2_gets_weights_and_tokenizer_and_the_cli_streams(http_server, tmp_path, monkeypatch, capsys):
    from hubkit.cli import main

    source = _serve_tiny_gpt2(http_server, tmp_path, monkeypatch)
    model = hubkit.load("gpt2", pretrained=True)
    assert not model.training and isinstance(model.tokenizer, TokenizerFast)
    np.testing.assert_array_equal(model.lm_head.weight.numpy(), source.transformer.wte.weight.numpy())
    text = model.generate("Once upon a time", 8, eos_token_id=None)
    assert main(["generate", "gpt2", "Once upon a time", "--max-new-tokens", "8", "--no-progress"]) == 0
    out = capsys.readouterr().out
    # the model's own eos (0) may end the CLI's run earlier; otherwise it is the same text
    assert out.startswith("Once upon a time") and text.startswith(out.rstrip("\n"))
    assert main(["generate", "gpt2", "Once", "--sample", "--seed", "3", "--max-new-tokens", "4", "--stop", "zz"]) == 0
    capsys.readouterr()
    info = hubkit.model_info("gpt2")
    assert info["task"] == "text-generation" and [f["name"] for f in info["weights"][0]["files"]] == ["tokenizer.json"]
    monkeypatch.setattr(hubkit, "load", lambda *args, **kwargs: hubkit.nn.Linear(2, 2))
    assert main(["generate", "resnet18", "x"]) == 1
    assert "does not generate text" in capsys.readouterr().err


def test_registry_entries_pin_revisions_and_hashes():
    api._ensure_zoo()
    assert {"gpt2", "distilgpt2", "gpt2-medium"} <= set(hubkit.list_models(task="text-generation"))
    (gpt2,) = registry.get_entry("gpt2").weights
    assert "/resolve/607a30d783dfa663caf39e06633721c8d4cfcd7e/" in gpt2.url
    assert gpt2.sha256 == "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707" and gpt2.size == 548105171
    assert gpt2.num_params == 124439808
    (medium,) = registry.get_entry("gpt2-medium").weights
    assert medium.sha256 is None  # unknown upstream: the first download records it
    assert registry.get_entry("distilgpt2").weights[0].num_params == 81912576


def test_streaming_does_not_leave_gradients_off_between_pieces():
    model = _model()
    for _ in model.stream("Hello", 3, eos_token_id=None):
        assert hubkit.is_grad_enabled()
    assert hubkit.is_grad_enabled() and not model.training
