"""hubkit.zoo.text: Hugging Face text models with upstream state-dict keys, and their tokenizers.

Importing this package registers the architectures with ``hubkit.hub.registry``: BERT (all-MiniLM-L6-v2 sentence
embeddings, bert-base-uncased fill-mask), DistilBERT, RoBERTa, and GPT-2 (gpt2, distilgpt2, gpt2-medium) with
generation. Use them through ``hubkit.load(name, pretrained=True)``, or build one from its config and load any
checkpoint of that family by key; any Hugging Face folder or repo of these families loads with
``hubkit.load(FOLDER)`` / ``hubkit.load("hf:ORG/NAME")`` (:mod:`hubkit.zoo.hf`). Text models with a tokenizer have
sentence-transformers' ``model.tokenize(texts)``; ``SentenceEncoder`` has its ``encode``, ``similarity`` and
``get_sentence_embedding_dimension``, and :mod:`hubkit.zoo.text.util` its ``util`` functions (``cos_sim``,
``semantic_search``, ...). Tokenizers: :mod:`hubkit.zoo.text.tokenizer_json` (fast tokenizers from
``tokenizer.json``), :mod:`hubkit.zoo.text.bpe` (byte-level BPE), :mod:`hubkit.zoo.text.tokenizers` (BERT's slow
WordPiece).
"""

from hubkit.zoo.text.bert import (
    BertConfig,
    BertForMaskedLM,
    BertModel,
    BertOutput,
    SentenceEncoder,
    all_minilm_l6_v2,
    bert_base_uncased,
)
from hubkit.zoo.text.distilbert import DistilBertConfig, DistilBertForMaskedLM, DistilBertModel, distilbert_base_uncased
from hubkit.zoo.text.gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model, distilgpt2, gpt2, gpt2_medium
from hubkit.zoo.text.roberta import RobertaConfig, RobertaForMaskedLM, RobertaModel, roberta_base

__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertModel",
    "BertOutput",
    "DistilBertConfig",
    "DistilBertForMaskedLM",
    "DistilBertModel",
    "GPT2Config",
    "GPT2LMHeadModel",
    "GPT2Model",
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaModel",
    "SentenceEncoder",
    "all_minilm_l6_v2",
    "bert_base_uncased",
    "distilbert_base_uncased",
    "distilgpt2",
    "gpt2",
    "gpt2_medium",
    "roberta_base",
]
