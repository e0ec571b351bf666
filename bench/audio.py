"""Speech recognition: hubkit's wav2vec2_asr_base_960h vs Hugging Face transformers' Wav2Vec2ForCTC, side by side.

    python bench/audio.py                  # 10 s of audio at batch 1, and 4 x 5 s; best of 3
    python bench/audio.py --repeat 5
    python bench/audio.py --processes      # each library in a process of its own, as users run them

Same random weights on both sides (transformers' initialisation, copied into hubkit's torchaudio-keyed tree
as tests/zoo/test_audio_parity.py does), CPU, inference without gradients, the two taking turns every round;
outputs are checked to agree.
The ratio is hubkit time / transformers time (lower is better, 1.0 = parity).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
from _timing import best_of_interleaved, best_of_processes, serve

import hubkit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "zoo"))


INPUTS = ((1, 10), (4, 5))  # (batch, seconds of audio)


def _one_side(side: str, batch: int, seconds: int):
    """``--worker``: one library's forward on ``batch`` random waveforms of ``seconds`` each, with its own random
    initialisation (timing only: the one-process run checks that the two agree on shared weights)."""
    audio = (np.random.default_rng(0).standard_normal((batch, 16000 * seconds)) * 0.1).astype(np.float32)
    if side == "hubkit":
        from hubkit.zoo.audio.wav2vec2 import wav2vec2_asr_base_960h

        hubkit.manual_seed(0)
        ours = wav2vec2_asr_base_960h().eval()

        def run_ours():
            with hubkit.no_grad():
                return ours(audio).numpy()

        return run_ours
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from hubkit.zoo.audio.wav2vec2 import LIBRISPEECH_LABELS

    torch.manual_seed(0)
    theirs = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(LIBRISPEECH_LABELS))).eval()
    xt = torch.from_numpy(audio)

    def run_theirs():
        with torch.no_grad():
            return theirs(xt).logits.numpy()

    return run_theirs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", action="store_true",
                        help="each library in a worker process of its own (see bench/_timing.py)")  # fmt: skip
    parser.add_argument("--worker", choices=("hubkit", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        batch, seconds = (int(v) for v in args.input.split("x"))
        serve(_one_side(args.worker, batch, seconds))
        return
    if args.processes:
        print("| input | hubkit (s) | transformers (s) | ratio | real-time factor (hubkit) |")
        print("|---|---:|---:|---:|---:|")
        for batch, seconds in INPUTS:
            command = [sys.executable, os.path.abspath(__file__), "--input", f"{batch}x{seconds}", "--worker"]
            hub_s, hf_s = best_of_processes([(command + ["hubkit"], False), (command + ["torch"], True)], args.repeat)
            print(f"| {batch} x {seconds} s | {hub_s:.3f} | {hf_s:.3f} | {hub_s / hf_s:.2f}x | "
                  f"{hub_s / (batch * seconds):.3f} |", flush=True)  # fmt: skip
        return

    import torch
    from test_audio_parity import _to_torchaudio_keys  # the Hugging Face -> torchaudio key renames
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from hubkit.zoo.audio.wav2vec2 import LIBRISPEECH_LABELS, _fix_keys, wav2vec2_asr_base_960h

    torch.manual_seed(0)
    theirs = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(LIBRISPEECH_LABELS))).eval()
    ours = wav2vec2_asr_base_960h()
    ours.load_state_dict(_fix_keys(_to_torchaudio_keys(theirs.state_dict())))
    ours.eval()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")  # fmt: skip
    print("| input | hubkit (s) | transformers (s) | ratio | real-time factor (hubkit) |")
    print("|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for batch, seconds in INPUTS:
        audio = (rng.standard_normal((batch, 16000 * seconds)) * 0.1).astype(np.float32)
        xt = torch.from_numpy(audio)

        def run_ours(a=audio):
            with hubkit.no_grad():
                return ours(a).numpy()

        def run_theirs(x=xt):
            with torch.no_grad():
                return theirs(x).logits.numpy()

        (hub_s, got), (hf_s, want) = best_of_interleaved([run_ours, run_theirs], args.repeat)
        diff = float(np.abs(got - want).max())
        if diff > 1e-3:
            raise SystemExit(f"hubkit and transformers disagree (max abs difference {diff:.3g})")
        print(f"| {batch} x {seconds} s | {hub_s:.3f} | {hf_s:.3f} | {hub_s / hf_s:.2f}x | "
              f"{hub_s / (batch * seconds):.3f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
