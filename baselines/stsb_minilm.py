"""Spearman correlation of all-MiniLM-L6-v2's cosine similarities with the STS benchmark test scores.

    python -m hubkit.baselines.stsb_minilm

Published: 0.8203 (cosine Spearman on STSBenchmark test), MTEB's result file for
sentence-transformers/all-MiniLM-L6-v2 (embeddings-benchmark/results, STSBenchmark.json, mteb 1.12.75).
Evaluation as sentence-transformers' EmbeddingSimilarityEvaluator: embed both sentences of each pair
(mean pooling, normalised), cosine similarity, Spearman rank correlation with the gold scores.
"""

from __future__ import annotations

import argparse

import numpy as np

from hubkit.baselines._common import Baseline, Outcome, resolve_device, run_cli

BASELINE = Baseline(
    name="stsb_minilm",
    task="semantic textual similarity (STS benchmark test) with all-MiniLM-L6-v2",
    metric="Spearman (cosine)",
    published=0.8203,
    source="MTEB results for sentence-transformers/all-MiniLM-L6-v2, STSBenchmark.json (test cosine Spearman)",
    lower_is_better=False,
    defaults={"epochs": 0, "batch_size": 64, "lr": 0.0},
)

TEST_PAIRS = 1379


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1 with ties given their average rank (what Spearman's correlation needs)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2.0  # mean of the 1-based positions start+1 .. end
    out = np.empty(len(values))
    out[order] = np.repeat(average, ends - starts)
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def run(args: argparse.Namespace) -> Outcome:
    import hubkit
    from hubkit.datasets import STSB

    dataset = STSB(args.data_root, split="test", download=True)
    model = hubkit.load("all-MiniLM-L6-v2", pretrained=True, device=resolve_device(args.device))
    first = [dataset[i][0] for i in range(len(dataset))]
    second = [dataset[i][1] for i in range(len(dataset))]
    gold = np.array([dataset[i][2] for i in range(len(dataset))])
    a = model.encode(first, batch_size=args.batch_size)
    b = model.encode(second, batch_size=args.batch_size)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rho = spearman(cosine, gold)
    protocol = "full" if len(dataset) == TEST_PAIRS else f"{len(dataset)} pairs (the test split has {TEST_PAIRS})"
    return Outcome(rho, {"spearman_cosine": rho, "pearson_cosine": float(np.corrcoef(cosine, gold)[0, 1]),
                         "pairs": len(dataset)}, protocol)


def main(argv: list[str] | None = None) -> int:
    return run_cli(BASELINE, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
