"""GPT-2, DistilBERT, RoBERTa and BERT's masked-LM head against transformers, on random weights of small
configurations built here: logits and hidden states, greedy generation (32 new tokens, with and without the
key/value cache), perplexity, folders written by ``save_pretrained``, and the fill-mask pipeline's top 5."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hubkit
from hubkit.zoo import text as zt
from hubkit.zoo.text.tokenizer_json import TokenizerFast

pytestmark = pytest.mark.parity
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


def _state(hf_model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in hf_model.state_dict().items()}


def _load(ours, hf_model):
    state = _state(hf_model)
    missing = set(ours.state_dict()) - set(state)
    assert missing <= {"bert.embeddings.position_ids", "embeddings.position_ids"}  # BertModel keeps the 4.x buffer
    for key in missing:
        state[key] = ours.state_dict()[key].numpy()
    ours.load_state_dict(state, strict=True)
    return ours.eval()


# ---------------------------------------------------------------- GPT-2

GPT2_KW = {"vocab_size": 120, "n_positions": 80, "n_embd": 32, "n_layer": 2, "n_head": 4, "initializer_range": 0.2,
           "bos_token_id": 0, "eos_token_id": 0}  # fmt: skip


@pytest.fixture(scope="module")
def gpt2_pair():
    torch.manual_seed(0)
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2_KW)).eval()
    ours = _load(zt.GPT2LMHeadModel(zt.GPT2Config(**GPT2_KW)), theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return ours, theirs


def test_gpt2_logits_match(gpt2_pair):
    ours, theirs = gpt2_pair
    ids = np.random.default_rng(0).integers(1, 120, (3, 17))
    mask = np.ones_like(ids)
    mask[2, 12:] = 0
    with torch.no_grad():
        want = theirs(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    with hubkit.no_grad():
        got = ours(ids, attention_mask=mask).logits.numpy()
    keep = mask.astype(bool)
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-4, atol=1e-4)


def test_gpt2_greedy_generation_matches_with_and_without_the_cache(gpt2_pair):
    ours, theirs = gpt2_pair
    for seed in range(3):
        prompt = np.random.default_rng(seed).integers(1, 120, 6)
        with torch.no_grad():
            want = theirs.generate(torch.from_numpy(prompt[None]), max_new_tokens=32, do_sample=False,
                                   eos_token_id=None, pad_token_id=0).numpy()[0]  # fmt: skip
        cached = ours.generate(prompt, 32, eos_token_id=None)
        uncached = ours.generate(prompt, 32, eos_token_id=None, use_cache=False)
        assert len(want) == 38 and len(set(want[6:].tolist())) > 3
        np.testing.assert_array_equal(cached, want)
        np.testing.assert_array_equal(uncached, want)


def test_gpt2_repetition_penalty_greedy_matches(gpt2_pair):
    ours, theirs = gpt2_pair
    prompt = np.array([5, 9, 13, 5, 9])
    with torch.no_grad():
        want = theirs.generate(torch.from_numpy(prompt[None]), max_new_tokens=20, do_sample=False,
                               repetition_penalty=1.3, eos_token_id=None, pad_token_id=0).numpy()[0]  # fmt: skip
    np.testing.assert_array_equal(ours.generate(prompt, 20, repetition_penalty=1.3, eos_token_id=None), want)


def test_gpt2_perplexity_matches_the_loss(gpt2_pair):
    ours, theirs = gpt2_pair
    ids = np.random.default_rng(3).integers(1, 120, 40)
    with torch.no_grad():
        loss = theirs(torch.from_numpy(ids[None]), labels=torch.from_numpy(ids[None])).loss.item()
    assert ours.perplexity(ids) == pytest.approx(np.exp(loss), rel=1e-4)


def test_gpt2_folder_written_by_save_pretrained_loads_and_generates_text(tmp_path):
    from transformers import PreTrainedTokenizerFast

    tok_json = json.loads((_byte_level_tokenizer()).to_str())
    vocab_size = len(tok_json["model"]["vocab"]) + 1
    torch.manual_seed(1)
    config = transformers.GPT2Config(**{**GPT2_KW, "vocab_size": vocab_size})
    theirs = transformers.GPT2LMHeadModel(config).eval()
    theirs.save_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok_json), encoding="utf-8")
    ours = zt.GPT2LMHeadModel.from_pretrained_dir(tmp_path)
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"), eos_token="<|endoftext|>")
    for backend in ("python", "tokenizers"):
        ours.tokenizer = TokenizerFast.from_file(tmp_path / "tokenizer.json", backend=backend)
        prompt = "Once upon a time, naïve 中文"
        ids = hf_tok(prompt, return_tensors="pt")["input_ids"]
        assert ours.tokenizer.encode(prompt) == ids[0].tolist()
        with torch.no_grad():
            want = theirs.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
        text = ours.generate(prompt, 12, eos_token_id=None)
        assert text == prompt + hf_tok.decode(want[0, ids.shape[1]:], skip_special_tokens=True)


def _byte_level_tokenizer(specials: tuple[str, ...] = ("<|endoftext|>",)):
    from textfuzz import strings
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(strings(1000, seed=4), trainer)
    return tok


# ---------------------------------------------------------------- encoders

ENCODER_KW = {"vocab_size": 60, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 37, "max_position_embeddings": 40}  # fmt: skip
IDS = np.array([[0, 5, 6, 7, 8, 9, 2, 1, 1], [0, 10, 11, 12, 13, 14, 15, 16, 2]])
MASK = (IDS != 1).astype(np.int64)


def _compare(got, want):
    keep = MASK.astype(bool)
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-4, atol=2e-5)


def test_distilbert_hidden_states_and_mlm_logits_match():
    torch.manual_seed(2)
    kw = {"vocab_size": 60, "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37, "max_position_embeddings": 40}
    theirs = transformers.DistilBertForMaskedLM(transformers.DistilBertConfig(**kw)).eval()
    ours = _load(zt.DistilBertForMaskedLM(zt.DistilBertConfig(**kw)), theirs)
    with torch.no_grad():
        want = theirs(torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK), output_hidden_states=True)
    with hubkit.no_grad():
        hidden = ours.distilbert(IDS, MASK).numpy()
        logits = ours(IDS, MASK).numpy()
    _compare(hidden, want.hidden_states[-1].numpy())
    _compare(logits, want.logits.numpy())
    base = transformers.DistilBertModel(transformers.DistilBertConfig(**kw)).eval()
    ours_base = _load(zt.DistilBertModel(zt.DistilBertConfig(**kw)), base)
    with torch.no_grad(), hubkit.no_grad():
        _compare(ours_base(IDS, MASK).numpy(), base(torch.from_numpy(IDS), torch.from_numpy(MASK))[0].numpy())


def test_roberta_hidden_states_pooler_and_mlm_logits_match():
    torch.manual_seed(3)
    kw = {**ENCODER_KW, "type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1}
    base = transformers.RobertaModel(transformers.RobertaConfig(**kw)).eval()
    ours_base = _load(zt.RobertaModel(zt.RobertaConfig(**ENCODER_KW)), base)
    with torch.no_grad():
        want = base(torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK))
    with hubkit.no_grad():
        got = ours_base(IDS, MASK)
    _compare(got.last_hidden_state.numpy(), want.last_hidden_state.numpy())
    np.testing.assert_allclose(got.pooler_output.numpy(), want.pooler_output.numpy(), rtol=1e-4, atol=2e-5)
    mlm = transformers.RobertaForMaskedLM(transformers.RobertaConfig(**kw)).eval()
    ours = _load(zt.RobertaForMaskedLM(zt.RobertaConfig(**ENCODER_KW)), mlm)
    with torch.no_grad(), hubkit.no_grad():
        want = mlm(torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK)).logits.numpy()
        _compare(ours(IDS, MASK).numpy(), want)


def test_bert_mlm_logits_match():
    torch.manual_seed(4)
    theirs = transformers.BertForMaskedLM(transformers.BertConfig(**ENCODER_KW)).eval()
    ours = _load(zt.BertForMaskedLM(zt.BertConfig(**ENCODER_KW)), theirs)
    with torch.no_grad(), hubkit.no_grad():
        want = theirs(torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK)).logits.numpy()
        _compare(ours(IDS, MASK).numpy(), want)


# ---------------------------------------------------------------- fill-mask

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "paris", "is", "the", "capital", "of", "france", ".", "london",
         "city", "a", "an", "big", "small", "river", "##s", "##ing", ",", "berlin", "germany", "rome", "italy"]


@pytest.fixture(scope="module")
def bert_fill_mask(tmp_path_factory):
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    tok = tokenizers.Tokenizer(models.WordPiece({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])  # fmt: skip
    tok.decoder = decoders.WordPiece()
    path = tmp_path_factory.mktemp("bert") / "tokenizer.json"
    tok.save(str(path))
    roles = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
             "mask_token": "[MASK]"}  # fmt: skip
    torch.manual_seed(5)
    kw = {**ENCODER_KW, "vocab_size": len(WORDS), "initializer_range": 0.5}
    theirs = transformers.BertForMaskedLM(transformers.BertConfig(**kw)).eval()
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), **roles)
    pipe = transformers.pipeline("fill-mask", model=theirs, tokenizer=hf_tok, device="cpu")
    ours = _load(zt.BertForMaskedLM(zt.BertConfig(**{k: v for k, v in kw.items() if k != "initializer_range"})),
                 theirs)  # fmt: skip
    return pipe, ours, path, roles


def _same_predictions(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, list):
            _same_predictions(g, w)
            continue
        assert (g["token"], g["token_str"], g["sequence"]) == (w["token"], w["token_str"], w["sequence"])
        assert g["score"] == pytest.approx(w["score"], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("backend", ["python", "tokenizers"])
def test_bert_fill_mask_top5_matches_the_pipeline(bert_fill_mask, backend):
    pipe, ours, path, roles = bert_fill_mask
    ours.tokenizer = TokenizerFast.from_file(path, backend=backend, **roles)
    for text in ("paris is the [MASK] of france.", "[MASK] is the capital of [MASK].", "Berlin , [MASK] city"):
        _same_predictions(ours.fill_mask(text), pipe(text))
    _same_predictions(ours.fill_mask(["rome is a [MASK] city", "a [MASK] river"], top_k=3),
                      pipe(["rome is a [MASK] city", "a [MASK] river"], top_k=3))  # fmt: skip


def test_roberta_fill_mask_top5_matches_the_pipeline(tmp_path):
    from tokenizers import AddedToken, processors

    tok = _byte_level_tokenizer(("<s>", "<pad>", "</s>", "<unk>"))  # RoBERTa's ids 0-3: padding is 1
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False)])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    roles = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "mask_token": "<mask>"}
    torch.manual_seed(6)
    pad = tok.token_to_id("<pad>")
    kw = {**ENCODER_KW, "vocab_size": tok.get_vocab_size(), "type_vocab_size": 1, "layer_norm_eps": 1e-5,
          "pad_token_id": pad, "max_position_embeddings": 64}  # fmt: skip
    theirs = transformers.RobertaForMaskedLM(transformers.RobertaConfig(**kw, initializer_range=0.5)).eval()
    ours = _load(zt.RobertaForMaskedLM(zt.RobertaConfig(**kw)), theirs)
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), **roles)
    pipe = transformers.pipeline("fill-mask", model=theirs, tokenizer=hf_tok, device="cpu")
    ours.tokenizer = TokenizerFast.from_file(path, **roles)
    for text in ("The capital of France is <mask>.", "naïve <mask> world"):
        _same_predictions(ours.fill_mask(text), pipe(text))
