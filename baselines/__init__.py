"""hubkit.baselines: scripts that reproduce published results with hubkit's zoo, datasets and Trainer.

    hubkit baselines list
    hubkit baselines run mnist_lenet5 --epochs 10
    python -m hubkit.baselines.cifar10_resnet20

Each script writes ``results.json`` (config, seed, versions, hardware, wall time, metrics, and the
published number with its source) and, with ``--append-results``, its row to ``RESULTS.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hubkit.errors import ArgumentError

NAMES = ("mnist_lenet5", "fashion_mnist_cnn", "cifar10_resnet20", "imagenet_eval", "speechcommands_m5",
         "librispeech_wav2vec2", "stsb_minilm")


def get(name: str) -> ModuleType:
    """The baseline's module (with ``BASELINE``, ``run`` and ``main``)."""
    if name not in NAMES:
        import difflib

        close = difflib.get_close_matches(name, NAMES, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ArgumentError(f"no baseline named {name!r}{hint} Available: {', '.join(NAMES)}")
    return importlib.import_module(f"hubkit.baselines.{name}")


def list_baselines() -> list[ModuleType]:
    return [get(name) for name in NAMES]
