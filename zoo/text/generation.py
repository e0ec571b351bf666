"""Text generation for causal language models: ``generate``, ``stream`` and ``perplexity``.

The decoding rules are transformers' (generation/utils.py, logits_process.py): the repetition penalty first
(scores of every token already in the sequence, prompt included, divided by the penalty when positive and
multiplied when negative); then, only when sampling, temperature -> top-k -> top-p; greedy decoding takes the
first arg-max. Generation stops after ``max_new_tokens``, at the end-of-sequence token, or when the new text
contains one of the ``stop`` strings (which is then cut off, with everything after it).

With a key/value cache (the default) the prompt is run once and every new token costs one position; with
``use_cache=False`` the whole sequence is run again for each token (same tokens, slower; useful to check).
Sampling draws from ``numpy.random.default_rng(seed)``, so a seed repeats a generation exactly in hubkit (it
cannot repeat torch's random stream).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import hubkit
from hubkit.errors import ArgumentError, ArgumentTypeError, ShapeError

__all__ = ["CausalLMMixin", "process_logits"]

_DEFAULT = object()


def process_logits(
    scores: np.ndarray,
    seen: np.ndarray,
    *,
    do_sample: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    repetition_penalty: float,
) -> np.ndarray:
    """transformers' logits processors on one row of next-token ``scores`` (V,), given the token ids ``seen`` so
    far; filtered entries become ``-inf``. Returns a new float32 array."""
    scores = np.array(scores, dtype=np.float32)
    if repetition_penalty != 1.0 and seen.size:
        ids = np.unique(seen)
        picked = scores[ids]
        penalty = np.float32(repetition_penalty)
        scores[ids] = np.where(picked < 0, picked * penalty, picked / penalty)
    if not do_sample:
        return scores
    if temperature != 1.0:
        scores = scores / np.float32(temperature)
    if top_k:
        k = min(max(top_k, 1), scores.size)
        kth = np.partition(scores, -k)[-k]
        scores[scores < kth] = -np.inf
    if top_p < 1.0:
        order = np.argsort(scores, kind="stable")
        ascending = scores[order]
        probs = _softmax(ascending)
        remove = np.cumsum(probs) <= 1 - top_p
        remove[-1] = False  # keep at least the most likely token
        scores[order[remove]] = -np.inf
    return scores


def _softmax(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    top = x[finite].max() if finite.any() else 0.0
    e = np.where(finite, np.exp(x - top), 0.0)
    return e / e.sum()


def _check_number(name: str, value: Any, low: float, *, low_open: bool, high: float | None = None,
                  integer: bool = False) -> None:  # fmt: skip
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ArgumentTypeError(f"generate: {name} must be {'an int' if integer else 'a number'}, got {value!r}")
    if (value <= low if low_open else value < low) or (high is not None and value > high):
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise ArgumentError(f"generate: {name} must be {bound}, got {value!r}")


class CausalLMMixin:
    """``generate`` / ``stream`` / ``perplexity`` for a module that implements ``_forward_logits(ids, cache,
    last_only)`` (ids (1, T) int64 -> logits (T, V) numpy float32, or (1, V) for the last position only,
    extending ``cache`` when one is given), ``_new_cache(n)``,
    ``_max_positions()`` and has ``tokenizer`` and ``config.eos_token_id``."""

    tokenizer: Any

    # ---------------------------------------------------------------- hooks the model implements

    def _forward_logits(self, ids: np.ndarray, cache: Any, last_only: bool = False) -> np.ndarray:
        raise NotImplementedError

    def _new_cache(self, capacity: int) -> Any:
        raise NotImplementedError

    def _max_positions(self) -> int:
        raise NotImplementedError

    # ---------------------------------------------------------------- inputs

    def _prompt_ids(self, prompt: Any) -> tuple[list[int], bool]:
        """(token ids, whether the prompt was text)."""
        if isinstance(prompt, str):
            return self._require_tokenizer("a text prompt").encode(prompt), True
        arr = prompt.cpu().numpy() if isinstance(prompt, hubkit.Tensor) else np.asarray(prompt)
        if arr.ndim == 2:
            if arr.shape[0] != 1:
                raise ShapeError(f"generate takes one sequence; got a batch of {arr.shape[0]} (shape {arr.shape}). "
                                 "Call it once per prompt.")  # fmt: skip
            arr = arr[0]
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ArgumentTypeError(f"generate: the prompt must be a string or token ids (1-d ints, or (1, T)); got "
                                    f"shape {arr.shape} dtype {arr.dtype}")  # fmt: skip
        return [int(i) for i in arr], False

    def _require_tokenizer(self, what: str) -> Any:
        if getattr(self, "tokenizer", None) is None:
            raise ArgumentError(
                f"{type(self).__name__} needs a tokenizer for {what}: load the model with hubkit.load(name, "
                "pretrained=True), set model.tokenizer, or pass token ids"
            )
        return self.tokenizer

    # ---------------------------------------------------------------- generation

    def _new_tokens(self, ids: list[int], max_new_tokens: int, *, temperature: float, top_k: int, top_p: float,
                    repetition_penalty: float, do_sample: bool, seed: int | None, eos_token_id: int | None,
                    use_cache: bool) -> Iterator[int]:  # fmt: skip
        """Yield new token ids one at a time (the end-of-sequence token included when reached)."""
        if not ids:
            raise ArgumentError("generate: the prompt is empty; give at least one token (GPT-2 often starts from "
                                "'<|endoftext|>')")  # fmt: skip
        limit = self._max_positions()
        if len(ids) + max_new_tokens > limit:
            raise ArgumentError(
                f"generate: the prompt has {len(ids)} tokens and max_new_tokens={max_new_tokens}, but the model has "
                f"{limit} positions; shorten the prompt or ask for at most {max(limit - len(ids), 0)} new tokens"
            )
        rng = np.random.default_rng(seed)
        seen = np.array(ids, dtype=np.int64)
        cache = self._new_cache(len(ids) + max_new_tokens) if use_cache else None
        was_training = getattr(self, "training", False)
        self.eval()
        try:
            feed = np.array([ids], dtype=np.int64)
            for _ in range(max_new_tokens):
                # no_grad only around the forward: a context left open across a yield would hold for the caller
                with hubkit.no_grad():
                    logits = self._forward_logits(feed if use_cache else seen[None, :], cache, last_only=True)[-1]
                scores = process_logits(logits, seen, do_sample=do_sample, temperature=temperature, top_k=top_k,
                                        top_p=top_p, repetition_penalty=repetition_penalty)  # fmt: skip
                if do_sample:
                    probs = _softmax(scores.astype(np.float64))
                    token = int(min(np.searchsorted(np.cumsum(probs), rng.random(), side="right"), probs.size - 1))
                else:
                    token = int(np.argmax(scores))
                yield token
                if eos_token_id is not None and token == eos_token_id:
                    return
                seen = np.append(seen, token)
                feed = np.array([[token]], dtype=np.int64)
        finally:
            self.train(was_training)

    def _settings(self, max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any, repetition_penalty: Any,
                  do_sample: Any, seed: Any, eos_token_id: Any) -> dict[str, Any]:  # fmt: skip
        _check_number("max_new_tokens", max_new_tokens, 0, low_open=False, integer=True)
        _check_number("top_k", top_k, 0, low_open=False, integer=True)
        _check_number("top_p", top_p, 0, low_open=True, high=1.0)
        _check_number("repetition_penalty", repetition_penalty, 0, low_open=True)
        if not isinstance(do_sample, bool):
            raise ArgumentTypeError(f"generate: do_sample must be True or False, got {do_sample!r}")
        _check_number("temperature", temperature, -math.inf, low_open=False)
        if do_sample and temperature <= 0:
            raise ArgumentError(f"generate: temperature must be a strictly positive float when sampling, got "
                                f"{temperature!r}; for greedy decoding pass do_sample=False")  # fmt: skip
        if seed is not None:
            _check_number("seed", seed, 0, low_open=False, integer=True)
        if eos_token_id is _DEFAULT:
            eos_token_id = getattr(getattr(self, "config", None), "eos_token_id", None)
        return {"temperature": float(temperature), "top_k": int(top_k), "top_p": float(top_p),
                "repetition_penalty": float(repetition_penalty), "do_sample": do_sample, "seed": seed,
                "eos_token_id": eos_token_id}  # fmt: skip

    def _pieces(self, ids: list[int], new: list[int], stops: list[str], max_new_tokens: int, use_cache: bool,
                settings: dict[str, Any]) -> Iterator[str]:  # fmt: skip
        """Generate after ``ids``, appending each new id to ``new``; yield the continuation's text as it firms up.
        Stops early (after the token that completes it) when the text contains a stop string, which is cut off."""
        tokenizer = self._require_tokenizer("text output and stop strings")
        sent = 0
        for token in self._new_tokens(ids, max_new_tokens, use_cache=use_cache, **settings):
            new.append(token)
            text = tokenizer.decode(new, skip_special_tokens=True)
            cut = _first_stop(text, stops)
            if cut is not None:
                if cut > sent:
                    yield text[sent:cut]
                return
            safe = len(text) - _held_back(text, stops)
            if safe > sent:
                yield text[sent:safe]
                sent = safe
        text = tokenizer.decode(new, skip_special_tokens=True)
        if len(text) > sent:
            yield text[sent:]

    def stream(
        self,
        prompt: str | Sequence[int] | np.ndarray,
        max_new_tokens: int = 50,
        *,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        do_sample: bool = False,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        eos_token_id: Any = _DEFAULT,
        use_cache: bool = True,
    ) -> Iterator[str]:
        """Yield the continuation of ``prompt`` as text pieces while it is generated (their concatenation is the
        continuation :meth:`generate` returns). A piece is held back while it ends inside a UTF-8 character or
        could be the start of a ``stop`` string. Arguments as :meth:`generate`."""
        settings = self._settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, do_sample, seed,
                                  eos_token_id)  # fmt: skip
        ids, _ = self._prompt_ids(prompt)
        yield from self._pieces(ids, [], _stop_list(stop), max_new_tokens, use_cache, settings)

    def generate(
        self,
        prompt: str | Sequence[int] | np.ndarray,
        max_new_tokens: int = 50,
        *,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        do_sample: bool = False,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        eos_token_id: Any = _DEFAULT,
        use_cache: bool = True,
        callback: Callable[[str], Any] | None = None,
    ) -> str | np.ndarray:
        """Continue ``prompt``: greedy by default, sampled with ``do_sample=True``.

        Args:
            prompt: text (needs ``model.tokenizer``), or token ids (1-d, or (1, T)).
            max_new_tokens: at most this many new tokens.
            temperature, top_k, top_p: sampling filters, used only with ``do_sample=True`` (``top_k=0`` and
                ``top_p=1.0`` turn them off).
            repetition_penalty: > 1 discourages tokens already in the sequence (1.0: off).
            seed: makes sampling repeatable.
            stop: a string or strings: generation ends once the new text contains one. Text output is cut before
                it; id output keeps the token that completed it (transformers' ``stop_strings``).
            eos_token_id: stop after this token (default: the model's; None: never).
            use_cache: reuse past keys/values (one position per new token) or rerun the whole sequence each step.
            callback: called with each new piece of text as it is generated (see :meth:`stream`).

        Returns:
            For a text prompt: prompt + continuation as text (special tokens dropped). For token ids: int64 ids,
            prompt then new tokens (shape (T,) or (1, T) like the input), as transformers' ``generate``.
        """
        settings = self._settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, do_sample, seed,
                                  eos_token_id)  # fmt: skip
        ids, is_text = self._prompt_ids(prompt)
        stops = _stop_list(stop)
        new: list[int] = []
        if is_text or stops or callback is not None:
            pieces = []
            for piece in self._pieces(ids, new, stops, max_new_tokens, use_cache, settings):
                pieces.append(piece)
                if callback is not None:
                    callback(piece)
            if is_text:
                return prompt + "".join(pieces)
        else:
            new = list(self._new_tokens(ids, max_new_tokens, use_cache=use_cache, **settings))
        return _shaped(ids + new, prompt)

    # ---------------------------------------------------------------- scoring

    def perplexity(self, text: str | Sequence[int] | np.ndarray, *, stride: int | None = None) -> float:
        """``exp`` of the mean negative log-likelihood of every token given the ones before it (the first token
        is context only), as ``exp(model(ids, labels=ids).loss)`` in transformers.

        Texts longer than the model's positions are scored in windows of that length moved by ``stride`` tokens
        (default: the full window); each token is scored once, with up to a window of context (the sliding
        window recipe of transformers' perplexity guide).
        """
        ids, _ = self._prompt_ids(text)
        if len(ids) < 2:
            raise ArgumentError(f"perplexity needs at least 2 tokens (the first is only context), got {len(ids)}")
        window = self._max_positions()
        stride = window if stride is None else stride
        _check_number("stride", stride, 0, low_open=True, high=window, integer=True)
        seq = np.array(ids, dtype=np.int64)
        total, count, scored_until = 0.0, 0, 1  # tokens [1, scored_until) already scored
        was_training = getattr(self, "training", False)
        self.eval()
        try:
            with hubkit.no_grad():
                begin = 0
                while True:
                    end = min(begin + window, len(seq))
                    logits = self._forward_logits(seq[None, begin:end], None).astype(np.float64)
                    first = max(scored_until, begin + 1)  # score tokens first..end-1 of this window
                    rows = logits[first - 1 - begin : end - 1 - begin]
                    top = rows.max(axis=1, keepdims=True)
                    log_z = np.log(np.exp(rows - top).sum(axis=1)) + top[:, 0]
                    total += float((log_z - rows[np.arange(len(rows)), seq[first:end]]).sum())
                    count += end - first
                    scored_until = end
                    if end == len(seq):
                        break
                    begin += stride
        finally:
            self.train(was_training)
        return math.exp(total / count)


def _shaped(ids: list[int], like: Any) -> np.ndarray:
    out = np.array(ids, dtype=np.int64)
    shape = np.shape(like.cpu().numpy() if isinstance(like, hubkit.Tensor) else like)
    return out[None, :] if len(shape) == 2 else out


def _stop_list(stop: Any) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else list(stop)
    if not all(isinstance(s, str) and s for s in stops):
        raise ArgumentTypeError(f"generate: stop must be a non-empty string or a list of them, got {stop!r}")
    return stops


def _first_stop(text: str, stops: list[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters to hold back: an unfinished UTF-8 character (decoded as U+FFFD) or the
    longest suffix that begins a stop string."""
    hold = 0
    while hold < len(text) and text[len(text) - 1 - hold] == "\ufffd":
        hold += 1
    if hold:
        return hold
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                hold = max(hold, n)
                break
    return hold
