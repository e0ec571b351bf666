"""``model.fill_mask(text)``: the top predictions for each mask token, as transformers' fill-mask pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import hubkit
from hubkit.errors import ArgumentError, ArgumentTypeError

__all__ = ["FillMaskMixin"]


class FillMaskMixin:
    """For masked language models that implement ``_mlm_logits(input_ids, attention_mask)`` ((N, L) int64 arrays ->
    (N, L, vocab) numpy logits) and carry a ``tokenizer`` with a mask token."""

    tokenizer: Any

    def _mlm_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fill_mask(self, text: str | Sequence[str], top_k: int = 5) -> list[dict[str, Any]] | list[Any]:
        """The ``top_k`` most likely tokens at each mask token of ``text``.

        Returns, as transformers' ``pipeline("fill-mask")``: for one mask a list of ``{"score", "token",
        "token_str", "sequence"}`` dicts, best first (``score``: softmax probability; ``sequence``: the text with
        the mask filled in, decoded without special tokens); for several masks one such list per mask (the other
        masks kept in ``sequence``); for a list of texts, one result per text.
        """
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            raise ArgumentError(f"{type(self).__name__}.fill_mask needs a tokenizer: load the model with "
                                "hubkit.load(name, pretrained=True) or set model.tokenizer")  # fmt: skip
        mask_id = getattr(tokenizer, "mask_token_id", None)
        if mask_id is None:
            raise ArgumentError(f"{type(self).__name__}.fill_mask: the tokenizer has no mask token")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ArgumentError(f"fill_mask: top_k must be a positive int, got {top_k!r}")
        if isinstance(text, str):
            return self._fill_one(text, top_k, tokenizer, mask_id)
        if not isinstance(text, (list, tuple)) or not all(isinstance(t, str) for t in text):
            raise ArgumentTypeError(f"fill_mask takes a string or a list of strings, got {type(text).__name__}")
        return [self._fill_one(t, top_k, tokenizer, mask_id) for t in text]

    def _fill_one(self, text: str, top_k: int, tokenizer: Any, mask_id: int) -> list[Any]:
        batch = tokenizer(text, return_tensors="np")
        ids = batch["input_ids"]
        positions = np.flatnonzero(ids[0] == mask_id)
        if positions.size == 0:
            raise ArgumentError(f"fill_mask: no mask token ({tokenizer.mask_token}) found in {text!r}")
        was_training = getattr(self, "training", False)
        self.eval()
        try:
            with hubkit.no_grad():
                logits = self._mlm_logits(ids, batch["attention_mask"])[0, positions].astype(np.float32)
        finally:
            self.train(was_training)
        top = logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits - top)
        probs = exp / exp.sum(axis=-1, keepdims=True)
        k = min(top_k, probs.shape[-1])
        single = positions.size == 1
        pad_id = getattr(tokenizer, "pad_token_id", None)
        results = []
        for row, position in zip(probs, positions):
            order = np.argsort(-row, kind="stable")[:k]
            rows = []
            for token in order:
                filled = ids[0].copy()
                filled[position] = token
                if pad_id is not None:
                    filled = filled[filled != pad_id]
                rows.append({
                    "score": float(row[token]),
                    "token": int(token),
                    "token_str": tokenizer.decode([int(token)]),
                    "sequence": tokenizer.decode(filled.tolist(), skip_special_tokens=single),
                })  # fmt: skip
            results.append(rows)
        return results[0] if single else results
