"""Word error rate of wav2vec 2.0 base (960 h) on LibriSpeech test-clean, greedy CTC, no language model.

    python -m hubkit.baselines.librispeech_wav2vec2

Published: 3.4 % WER on test-clean (and 8.6 % on test-other), the Hugging Face model card of
facebook/wav2vec2-base-960h (greedy decoding, no LM) -- the same fairseq model torchaudio's
WAV2VEC2_ASR_BASE_960H bundle (hubkit's ``wav2vec2_asr_base_960h``) converts. Each utterance is
transcribed on its own (padding would change the feature extractor's group normalisation); the WER
is corpus-level: word edits summed over all utterances, divided by all reference words.
"""

from __future__ import annotations

import argparse

import numpy as np

from hubkit.baselines._common import Baseline, Outcome, resolve_device, run_cli

BASELINE = Baseline(
    name="librispeech_wav2vec2",
    task="speech recognition on LibriSpeech test-clean with wav2vec2_asr_base_960h",
    metric="WER (%)",
    published=3.4,
    source="Hugging Face model card facebook/wav2vec2-base-960h (greedy CTC, no LM): test-clean 3.4, test-other 8.6",
    defaults={"epochs": 0, "batch_size": 1, "lr": 0.0},
)

SUBSET_SIZES = {"test-clean": 2620, "test-other": 2939}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subset", default="test-clean", choices=sorted(SUBSET_SIZES))
    p.add_argument("--limit", type=int, default=None, help="only the first N utterances (not the published protocol)")


def word_edits(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word sequences (substitutions, insertions and deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def run(args: argparse.Namespace) -> Outcome:
    import hubkit
    from hubkit.datasets import LIBRISPEECH

    dataset = LIBRISPEECH(args.data_root, url=args.subset, download=True)
    model = hubkit.load("wav2vec2_asr_base_960h", pretrained=True, device=resolve_device(args.device))
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    edits = words = 0
    examples = []
    for i in range(count):
        waveform, rate, transcript, *_ = dataset[i]
        if rate != 16000:
            from hubkit.audio import resample

            waveform = resample(np.asarray(waveform, np.float32), int(rate), 16000)
        (hypothesis,) = model.transcribe(np.asarray(waveform, np.float32).reshape(1, -1))
        reference = transcript.upper().split()
        edits += word_edits(reference, hypothesis.split())
        words += len(reference)
        if i < 3:
            examples.append({"reference": transcript, "hypothesis": hypothesis})
    wer = 100.0 * edits / max(words, 1)
    full = args.limit is None and count == SUBSET_SIZES[args.subset] and args.subset == "test-clean"
    protocol = "full" if full else f"{count} utterances of {args.subset}"
    return Outcome(wer, {"wer_pct": wer, "word_edits": edits, "reference_words": words, "utterances": count},
                   protocol, extra={"examples": examples})


def main(argv: list[str] | None = None) -> int:
    return run_cli(BASELINE, run, argv, add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
