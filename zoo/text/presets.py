"""The preprocessing of text weight tags: the tokenizer the weights were trained with.

``tokenizer_for_weights`` is the transforms factory the text zoo sets on its tags, so
``hubkit.get_weights("all-MiniLM-L6-v2").transforms()`` and ``hubkit.load(..., pretrained=True).tokenizer`` are the
tokenizer built from the tag's verified tokenizer file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.hub import fetch
from hubkit.hub.registry import WeightTag
from hubkit.zoo.text.tokenizers import BertTokenizer

__all__ = ["TokenizeMixin", "tokenizer_for_weights"]


def tokenizer_for_weights(tag: WeightTag, *, progress: bool | None = None) -> Any:
    """Fetch and verify the tag's tokenizer file (``TextPreprocessing.vocab``: a ``tokenizer.json`` gives the fast
    tokenizer, a ``vocab.txt`` BERT's WordPiece) and build the tokenizer with the tag's casing, accent and length
    settings: ``tok(["a sentence", ...], padding=True, return_tensors="np")`` -> ``input_ids``/``attention_mask``."""
    p = tag.preprocessing
    path = fetch(tag.file(p.vocab).resource, progress=progress)
    return BertTokenizer.from_file(path, do_lower_case=p.do_lower_case, strip_accents=p.strip_accents,
                                   tokenize_chinese_chars=p.tokenize_chinese_chars, model_max_length=p.max_length)


class TokenizeMixin:
    """``model.tokenize(texts)`` for text models that carry a ``tokenizer`` (sentence-transformers' method).

    The length limit is ``max_seq_length`` when the model has one (sentence-transformers models, and models loaded from
    a Hugging Face folder or repo), else the tokenizer's ``model_max_length``. ``do_lower_case`` (a
    sentence-transformers setting) lower-cases the texts first.
    """

    tokenizer: Any

    def tokenize(self, texts: str | Sequence[str] | Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """Texts (or ``(text, text)`` pairs) -> the arrays sentence-transformers' ``tokenize`` returns, as int64
        numpy arrays (N, L): ``input_ids``, ``attention_mask`` and, for models that use them, ``token_type_ids``;
        padded to the longest text, truncated (longest first) to the length limit."""
        from hubkit.zoo.text.util import _texts

        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            raise ArgumentError(f"{type(self).__name__}.tokenize needs a tokenizer: load the model with "
                                "hubkit.load(name, pretrained=True), hubkit.load('hf:ORG/NAME') or "
                                "hubkit.load(FOLDER), or set model.tokenizer")  # fmt: skip
        rows, _ = _texts(texts, "tokenize")
        if not rows:
            names = getattr(tokenizer, "model_input_names", ["input_ids", "token_type_ids", "attention_mask"])
            return {k: np.zeros((0, 0), dtype=np.int64) for k in names}
        if getattr(self, "do_lower_case", False):
            rows = [r.lower() if isinstance(r, str) else tuple(p.lower() for p in r) for r in rows]
        limit = getattr(self, "max_seq_length", None) or getattr(tokenizer, "model_max_length", None)
        if rows and all(isinstance(r, str) for r in rows):
            first, second = rows, None
        elif rows and all(not isinstance(r, str) for r in rows):
            first, second = [r[0] for r in rows], [r[1] for r in rows]
        else:
            raise ArgumentTypeError("tokenize takes texts or (text, text) pairs, not a mix of both")
        # one text needs no padding, so a tokenizer without a padding token (GPT-2's) still tokenizes it
        batch = tokenizer(first, second, padding=len(first) > 1, truncation="longest_first" if limit else False,
                          max_length=limit, return_tensors="np")  # fmt: skip
        return {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}
