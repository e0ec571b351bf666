"""The preprocessing of text weight tags: the tokenizer the weights were trained with.

``tokenizer_for_weights`` is the transforms factory the text zoo sets on its tags, so
``hubkit.get_weights("all-MiniLM-L6-v2").transforms()`` and ``hubkit.load(..., pretrained=True).tokenizer`` are the
tokenizer built from the tag's verified tokenizer file.
"""

from __future__ import annotations

from typing import Any

from hubkit.hub import fetch
from hubkit.hub.registry import WeightTag
from hubkit.zoo.text.tokenizers import BertTokenizer

__all__ = ["tokenizer_for_weights"]


def tokenizer_for_weights(tag: WeightTag, *, progress: bool | None = None) -> Any:
    """Fetch and verify the tag's tokenizer file (``TextPreprocessing.vocab``: a ``tokenizer.json`` gives the fast
    tokenizer, a ``vocab.txt`` BERT's WordPiece) and build the tokenizer with the tag's casing, accent and length
    settings: ``tok(["a sentence", ...], padding=True, return_tensors="np")`` -> ``input_ids``/``attention_mask``."""
    p = tag.preprocessing
    path = fetch(tag.file(p.vocab).resource, progress=progress)
    return BertTokenizer.from_file(path, do_lower_case=p.do_lower_case, strip_accents=p.strip_accents,
                                   tokenize_chinese_chars=p.tokenize_chinese_chars, model_max_length=p.max_length)
