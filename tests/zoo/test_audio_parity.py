"""wav2vec 2.0 against Hugging Face transformers' independent implementation (Wav2Vec2ForCTC), same random
weights: the full base architecture (7 conv layers, 128-wide grouped weight-normalised positional conv, 12
post-LN layers) gives the same CTC emissions. The state dict is renamed from Hugging Face's keys to
torchaudio's, which is what hubkit's module tree uses."""

from __future__ import annotations

import re

import numpy as np
import pytest

import hubkit
from hubkit.zoo.audio.wav2vec2 import LIBRISPEECH_LABELS, _fix_keys, wav2vec2_asr_base_960h

pytestmark = pytest.mark.parity

_RENAMES = [
    (r"^wav2vec2\.feature_extractor\.", "feature_extractor."),
    (r"^wav2vec2\.feature_projection\.", "encoder.feature_projection."),
    (r"^wav2vec2\.encoder\.pos_conv_embed\.", "encoder.transformer.pos_conv_embed."),
    (r"^wav2vec2\.encoder\.layer_norm\.", "encoder.transformer.layer_norm."),
    (r"^wav2vec2\.encoder\.layers\.", "encoder.transformer.layers."),
    (r"^lm_head\.", "aux."),
]


def _to_torchaudio_keys(state) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        if key == "wav2vec2.masked_spec_embed":
            continue
        for pattern, repl in _RENAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value.detach().numpy().copy()
    return out


@pytest.fixture(scope="module")
def pair():
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    theirs = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(LIBRISPEECH_LABELS))).eval()
    with torch.no_grad():  # non-trivial norms and biases, so every parameter matters
        for name, p in theirs.named_parameters():
            if "layer_norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    ours = wav2vec2_asr_base_960h()
    ours.load_state_dict(_fix_keys(_to_torchaudio_keys(theirs.state_dict())), strict=True)
    ours.eval()
    return ours, theirs


def test_every_hugging_face_parameter_maps_onto_the_torchaudio_tree(pair):
    ours, theirs = pair
    hf_count = sum(p.numel() for n, p in theirs.named_parameters() if n != "wav2vec2.masked_spec_embed")
    assert sum(p.numel() for p in ours.parameters()) == hf_count == hubkit.model_info(
        "wav2vec2_asr_base_960h")["num_params"]


def test_emissions_match_transformers(pair):
    import torch

    ours, theirs = pair
    audio = (np.random.default_rng(0).standard_normal((2, 16000)) * 0.1).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(audio)).logits.numpy()
    with hubkit.no_grad():
        got = ours(audio).numpy()
    assert got.shape == want.shape == (2, 49, len(LIBRISPEECH_LABELS))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_m5_matches_the_tutorial_network_in_torch(tmp_path):
    """PyTorch's speech-command tutorial M5, written here in torch.nn, against hubkit's on the same weights."""
    import torch

    nn, F = torch.nn, torch.nn.functional

    class TutorialM5(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1, self.pool1 = nn.Conv1d(1, 32, 80, stride=16), nn.BatchNorm1d(32), nn.MaxPool1d(4)
            self.conv2, self.bn2, self.pool2 = nn.Conv1d(32, 32, 3), nn.BatchNorm1d(32), nn.MaxPool1d(4)
            self.conv3, self.bn3, self.pool3 = nn.Conv1d(32, 64, 3), nn.BatchNorm1d(64), nn.MaxPool1d(4)
            self.conv4, self.bn4, self.pool4 = nn.Conv1d(64, 64, 3), nn.BatchNorm1d(64), nn.MaxPool1d(4)
            self.fc1 = nn.Linear(64, 35)

        def forward(self, x):
            x = self.pool1(F.relu(self.bn1(self.conv1(x))))
            x = self.pool2(F.relu(self.bn2(self.conv2(x))))
            x = self.pool3(F.relu(self.bn3(self.conv3(x))))
            x = self.pool4(F.relu(self.bn4(self.conv4(x))))
            x = F.avg_pool1d(x, x.shape[-1]).permute(0, 2, 1)
            return F.log_softmax(self.fc1(x), dim=2)

    torch.manual_seed(0)
    theirs = TutorialM5()
    audio = np.random.default_rng(0).standard_normal((4, 1, 8000)).astype(np.float32)
    theirs.train()
    theirs(torch.from_numpy(audio))  # real BatchNorm statistics
    theirs.eval()
    path = tmp_path / "m5.pth"
    torch.save(theirs.state_dict(), path)
    ours = hubkit.load("m5", weights=str(path))
    with torch.no_grad():
        want = theirs(torch.from_numpy(audio)).numpy()
    with hubkit.no_grad():
        got = ours(hubkit.from_numpy(audio)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
