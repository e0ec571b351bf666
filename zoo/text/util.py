"""sentence-transformers' ``util`` similarity functions on hubkit Tensors (``from sentence_transformers import util``
becomes ``from hubkit.zoo.text import util``).

    emb = model.encode(["A man is eating food.", "A man is riding a horse."])
    util.cos_sim(emb, emb)                    # (2, 2) Tensor of cosine similarities
    util.semantic_search(query_emb, corpus_emb, top_k=3)   # [[{"corpus_id": 4, "score": 0.71}, ...], ...]

Inputs may be numpy arrays, hubkit Tensors or (nested) lists; a 1-d input is one embedding (a batch of 1). Outputs
are float Tensors: ``(N, M)`` for the all-pairs functions, ``(N,)`` for the ``pairwise_`` ones. The formulas are
sentence-transformers' (``normalize_embeddings`` divides by ``max(||x||, 1e-12)``; the euclidean and manhattan
similarities are negative distances).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ArgumentTypeError, ShapeError
from hubkit.tensor import Tensor

__all__ = [
    "SIMILARITY_FUNCTIONS", "cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "normalize_embeddings",
    "pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim", "quantize_embeddings",
    "semantic_search", "similarity_functions",
]


def _as_tensor(x: Any, name: str) -> Tensor:
    if isinstance(x, Tensor):
        t = x
    elif isinstance(x, (list, tuple)) and x and isinstance(x[0], Tensor):
        t = hubkit.stack(list(x))
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise ArgumentTypeError(f"{name} must be embeddings (an array, a Tensor or lists of numbers): {e}") \
                from None
        if arr.dtype.kind not in "fiub":
            raise ArgumentTypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        t = hubkit.tensor(arr.astype(np.float32) if arr.dtype.kind != "f" else arr)
    if t.dtype.kind not in "f":
        t = t.float()
    return t


def _batch(x: Any, name: str) -> Tensor:
    t = _as_tensor(x, name)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2:
        raise ShapeError(f"{name} must be one embedding (D,) or a batch (N, D), got shape {tuple(t.shape)}")
    return t


def _pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    ta, tb = _batch(a, "a"), _batch(b, "b")
    if ta.shape[1] != tb.shape[1]:
        raise ShapeError(f"embeddings of different sizes: a is {tuple(ta.shape)}, b is {tuple(tb.shape)}")
    if ta.device != tb.device:
        tb = tb.to(ta.device)
    return ta, tb


def _same_rows(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    ta, tb = _pair(a, b)
    if ta.shape[0] != tb.shape[0]:
        raise ShapeError(f"pairwise similarity needs as many rows in a as in b, got {ta.shape[0]} and {tb.shape[0]}")
    return ta, tb


def normalize_embeddings(embeddings: Any) -> Tensor:
    """Each row divided by its L2 norm (at least 1e-12): (N, D) -> (N, D)."""
    return F.normalize(_batch(embeddings, "embeddings"), p=2.0, dim=1)


def cos_sim(a: Any, b: Any) -> Tensor:
    """Cosine similarity of every row of ``a`` (N, D) with every row of ``b`` (M, D) -> (N, M)."""
    ta, tb = _pair(a, b)
    return F.normalize(ta, p=2.0, dim=1) @ F.normalize(tb, p=2.0, dim=1).T


def pairwise_cos_sim(a: Any, b: Any) -> Tensor:
    """Cosine similarity of ``a[i]`` with ``b[i]``: (N, D), (N, D) -> (N,)."""
    ta, tb = _same_rows(a, b)
    return (F.normalize(ta, p=2.0, dim=1) * F.normalize(tb, p=2.0, dim=1)).sum(dim=-1)


def dot_score(a: Any, b: Any) -> Tensor:
    """Dot products of every row of ``a`` (N, D) with every row of ``b`` (M, D) -> (N, M)."""
    ta, tb = _pair(a, b)
    return ta @ tb.T


def pairwise_dot_score(a: Any, b: Any) -> Tensor:
    """``a[i] . b[i]``: (N, D), (N, D) -> (N,)."""
    ta, tb = _same_rows(a, b)
    return (ta * tb).sum(dim=-1)


def euclidean_sim(a: Any, b: Any) -> Tensor:
    """Negative euclidean distances of every row of ``a`` (N, D) to every row of ``b`` (M, D) -> (N, M)."""
    ta, tb = _pair(a, b)
    diff = ta.unsqueeze(1) - tb.unsqueeze(0)
    return -(diff * diff).sum(dim=-1).sqrt()


def pairwise_euclidean_sim(a: Any, b: Any) -> Tensor:
    """``-||a[i] - b[i]||``: (N, D), (N, D) -> (N,)."""
    ta, tb = _same_rows(a, b)
    diff = ta - tb
    return -(diff * diff).sum(dim=-1).sqrt()


def manhattan_sim(a: Any, b: Any) -> Tensor:
    """Negative L1 distances of every row of ``a`` (N, D) to every row of ``b`` (M, D) -> (N, M)."""
    ta, tb = _pair(a, b)
    return -(ta.unsqueeze(1) - tb.unsqueeze(0)).abs().sum(dim=-1)


def pairwise_manhattan_sim(a: Any, b: Any) -> Tensor:
    """``-|a[i] - b[i]|_1``: (N, D), (N, D) -> (N,)."""
    ta, tb = _same_rows(a, b)
    return -(ta - tb).abs().sum(dim=-1)


# name -> (all pairs, pairwise), sentence-transformers' SimilarityFunction values
SIMILARITY_FUNCTIONS: dict[str, tuple[Callable[[Any, Any], Tensor], Callable[[Any, Any], Tensor]]] = {
    "cosine": (cos_sim, pairwise_cos_sim),
    "dot": (dot_score, pairwise_dot_score),
    "euclidean": (euclidean_sim, pairwise_euclidean_sim),
    "manhattan": (manhattan_sim, pairwise_manhattan_sim),
}


def similarity_functions(name: str) -> tuple[Callable[[Any, Any], Tensor], Callable[[Any, Any], Tensor]]:
    """The (all pairs, pairwise) functions of a ``similarity_fn_name``; raises for an unknown name."""
    fns = SIMILARITY_FUNCTIONS.get(getattr(name, "value", name))
    if fns is None:
        raise ArgumentError(f"similarity_fn_name must be one of {sorted(SIMILARITY_FUNCTIONS)}, got {name!r}")
    return fns


def semantic_search(query_embeddings: Any, corpus_embeddings: Any, query_chunk_size: int = 100,
                    corpus_chunk_size: int = 500000, top_k: int = 10,
                    score_function: Callable[[Any, Any], Tensor] = cos_sim) -> list[list[dict[str, Any]]]:
    """sentence-transformers' ``util.semantic_search``: for each query (Q, D), the ``top_k`` corpus rows (C, D) with
    the highest ``score_function`` score, best first, as ``{"corpus_id": int, "score": float}`` dicts. Ties keep the
    lower corpus id first."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ArgumentError(f"semantic_search: top_k must be a positive int, got {top_k!r}")
    for name, value in (("query_chunk_size", query_chunk_size), ("corpus_chunk_size", corpus_chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(f"semantic_search: {name} must be a positive int, got {value!r}")
    queries, corpus = _pair(query_embeddings, corpus_embeddings)
    results: list[list[tuple[float, int]]] = [[] for _ in range(queries.shape[0])]
    with hubkit.no_grad():
        for q0 in range(0, queries.shape[0], query_chunk_size):
            for c0 in range(0, corpus.shape[0], corpus_chunk_size):
                scores = score_function(queries[q0:q0 + query_chunk_size], corpus[c0:c0 + corpus_chunk_size])
                block = np.asarray(scores.cpu().numpy(), dtype=np.float64)
                k = min(top_k, block.shape[1])
                for row, values in enumerate(block):
                    best = np.argsort(-values, kind="stable")[:k]
                    results[q0 + row].extend((float(values[i]), c0 + int(i)) for i in best)
    return [[{"corpus_id": cid, "score": score} for score, cid in sorted(hits, key=lambda h: (-h[0], h[1]))[:top_k]]
            for hits in results]


def _texts(sentences: str | Sequence[Any], what: str) -> tuple[list[Any], bool]:
    """(list of inputs, whether a single one was given) for encode/tokenize."""
    if isinstance(sentences, str):
        return [sentences], True
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()
    try:
        texts = list(sentences)
    except TypeError:
        raise ArgumentTypeError(f"{what} takes a string or a list of strings, got {type(sentences).__name__}") from None
    for s in texts:
        ok = isinstance(s, str) or (isinstance(s, (tuple, list)) and len(s) == 2 and all(isinstance(p, str) for p in s))
        if not ok:
            raise ArgumentError(f"{what} takes strings (or (text, text) pairs), got a {type(s).__name__}: {s!r}")
    return texts, False


def quantize_embeddings(embeddings: Any, precision: str, ranges: np.ndarray | None = None,
                        calibration_embeddings: np.ndarray | None = None) -> np.ndarray:
    """sentence-transformers' ``quantize_embeddings``: float embeddings (N, D) -> ``"float32"``, ``"int8"`` /
    ``"uint8"`` (256 buckets per dimension between the per-dimension minimum and maximum of ``ranges`` (2, D), else of
    ``calibration_embeddings``, else of the embeddings themselves, which needs at least two), ``"binary"`` (signs
    packed 8 per byte, minus 128, int8) or ``"ubinary"`` (the same as uint8), as numpy arrays."""
    arr = embeddings.cpu().numpy() if isinstance(embeddings, Tensor) else np.asarray(
        [e.cpu().numpy() if isinstance(e, Tensor) else e for e in embeddings] if isinstance(embeddings, list)
        else embeddings)  # fmt: skip
    if arr.dtype.kind != "f":
        raise ArgumentTypeError(f"quantize_embeddings takes float embeddings, got dtype {arr.dtype}")
    if precision == "float32":
        return arr.astype(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            source = arr if calibration_embeddings is None else np.asarray(calibration_embeddings)
            if source.ndim == 1 or source.shape[0] == 1:
                raise ArgumentError(f"cannot compute {precision} quantization ranges from a single embedding: pass "
                                    "ranges= or calibration_embeddings= from a representative set")  # fmt: skip
            ranges = np.vstack((source.min(axis=0), source.max(axis=0)))
        ranges = np.asarray(ranges, dtype=np.float32)
        starts = ranges[0]
        steps = (ranges[1] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        buckets = np.clip(np.floor((arr - starts) / steps), 0, 255)
        return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)
    if precision == "binary":
        return (np.packbits(arr > 0, axis=-1) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(arr > 0, axis=-1)
    raise ArgumentError(f"precision must be one of 'float32', 'int8', 'uint8', 'binary', 'ubinary', got {precision!r}")
