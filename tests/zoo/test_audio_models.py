"""wav2vec 2.0 without torch: torchaudio's keys, frame arithmetic, weight norm, the checkpoint fix-ups, CTC
decoding, WAV reading, and the pretrained path against the local HTTP server."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import wave

import numpy as np
import pytest

import hubkit
from hubkit import tasks
from hubkit.errors import ArgumentError, AudioFileError, ShapeError
from hubkit.hub import api, registry
from hubkit.hub.checkpoint.formats import save_checkpoint
from hubkit.zoo.audio import (
    LIBRISPEECH_LABELS,
    Wav2Vec2Config,
    Wav2Vec2Model,
    WaveformPreprocess,
    ctc_greedy_decode,
    load_wav,
)
from hubkit.zoo.audio.wav2vec2 import _fix_keys

TINY = Wav2Vec2Config(conv_layers=((8, 10, 5), (8, 3, 2)), embed_dim=16, pos_conv_kernel=4, pos_conv_groups=2,
                      num_layers=2, num_heads=2, ffn_dim=24, dropout=0.0, attention_dropout=0.0,
                      aux_num_out=len(LIBRISPEECH_LABELS))  # fmt: skip


def _tiny(seed: int = 0) -> Wav2Vec2Model:
    hubkit.manual_seed(seed)
    return Wav2Vec2Model(TINY, labels=LIBRISPEECH_LABELS).eval()


def test_keys_follow_torchaudio():
    keys = list(hubkit.load("wav2vec2_asr_base_960h").state_dict())
    assert len(keys) == 212
    assert keys[:4] == [f"feature_extractor.conv_layers.{k}" for k in (
        "0.conv.weight", "0.layer_norm.weight", "0.layer_norm.bias", "1.conv.weight")]
    assert "feature_extractor.conv_layers.1.layer_norm.weight" not in keys  # GroupNorm on the first block only
    for key in ("encoder.feature_projection.projection.weight", "encoder.transformer.pos_conv_embed.conv.weight_g",
                "encoder.transformer.pos_conv_embed.conv.weight_v", "encoder.transformer.layer_norm.bias",
                "encoder.transformer.layers.11.attention.out_proj.weight",
                "encoder.transformer.layers.0.feed_forward.intermediate_dense.weight",
                "encoder.transformer.layers.0.final_layer_norm.weight", "aux.weight"):  # fmt: skip
        assert key in keys, key
    base = hubkit.load("wav2vec2_base").state_dict()
    assert "aux.weight" not in base and len(base) == 210


def test_one_frame_per_320_samples_and_short_audio_is_a_clear_error():
    config = Wav2Vec2Config()
    assert [config.num_frames(n) for n in (16000, 400, 399, 720)] == [49, 1, 0, 2]
    model = _tiny()
    with hubkit.no_grad():
        assert model(np.zeros(100, dtype=np.float32)).shape == (1, 9, len(LIBRISPEECH_LABELS))  # 100 -> 19 -> 9
        assert model(np.zeros((3, 100), dtype=np.float32)).shape == (3, 9, len(LIBRISPEECH_LABELS))
        assert model(np.zeros(20, dtype=np.float32)).shape == (1, 1, len(LIBRISPEECH_LABELS))
    with pytest.raises(ShapeError, match="at least 20"):
        model(np.zeros(19, dtype=np.float32))
    with pytest.raises(ShapeError, match=r"\(N, samples\)"):
        model(np.zeros((1, 2, 100), dtype=np.float32))
    with pytest.raises(ArgumentError, match="multiple of num_heads"):
        Wav2Vec2Config(embed_dim=10, num_heads=4)


def test_weight_norm_conv_starts_as_its_plain_weight_and_trains_g_and_v():
    conv = _tiny().encoder.transformer.pos_conv_embed.conv
    v, g = conv.weight_v.numpy(), conv.weight_g.numpy()
    assert g.shape == (1, 1, 4)
    np.testing.assert_allclose(conv.weight().numpy(), v, rtol=1e-6)  # g = ||v|| at initialisation
    conv.weight_g.array[...] = 2 * g
    np.testing.assert_allclose(conv.weight().numpy(), 2 * v, rtol=1e-6)
    model = _tiny().train()
    (model(np.random.default_rng(0).standard_normal((2, 120)).astype(np.float32)) ** 2).sum().backward()
    assert [k for k, p in model.named_parameters() if p.grad is None] == []


def test_fix_keys_drops_the_fairseq_rows_and_renames_torch_weight_norm():
    rng = np.random.default_rng(0)
    aux = rng.standard_normal((32, 4)).astype(np.float32)
    state = {"aux.weight": aux, "aux.bias": np.arange(32, dtype=np.float32),
             "x.parametrizations.weight.original0": np.ones(1), "x.parametrizations.weight.original1": np.ones(2)}
    fixed = _fix_keys(state)
    np.testing.assert_array_equal(fixed["aux.weight"], np.concatenate([aux[:1], aux[4:]]))
    np.testing.assert_array_equal(fixed["aux.bias"], [0, *range(4, 32)])
    assert set(fixed) == {"aux.weight", "aux.bias", "x.weight_g", "x.weight_v"}
    assert _fix_keys({"aux.bias": np.zeros(29)})["aux.bias"].shape == (29,)  # torchaudio-saved: unchanged


def test_ctc_greedy_decode_merges_repeats_drops_blanks_and_splits_words():
    labels = LIBRISPEECH_LABELS
    path = "HH-E-LL-LLO||-WO-RLD|"
    emissions = np.full((len(path), len(labels)), -5.0)
    for t, ch in enumerate(path):
        emissions[t, labels.index(ch)] = 5.0
    assert ctc_greedy_decode(emissions, labels) == "HELLO WORLD"
    assert ctc_greedy_decode(np.zeros((0, len(labels))), labels) == ""
    with pytest.raises(ShapeError):
        ctc_greedy_decode(np.zeros((3, 5)), labels)


def test_transcribe_needs_labels_and_returns_one_string_per_utterance():
    model = _tiny()
    texts = model.transcribe(np.zeros((2, 160), dtype=np.float32))
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts) and not model.training
    with pytest.raises(ArgumentError, match="CTC head"):
        Wav2Vec2Model(dataclasses.replace(TINY, aux_num_out=None)).transcribe(np.zeros(160, dtype=np.float32))
    with pytest.raises(ArgumentError, match="labels"):
        Wav2Vec2Model(TINY, labels=("a", "b"))


def _write_wav(path, samples: np.ndarray, rate: int = 16000, width: int = 2, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())


def test_load_wav_reads_pcm_and_refuses_what_it_cannot_use(tmp_path):
    pcm = np.array([0, 16384, -32768, 32767], dtype="<i2")
    _write_wav(tmp_path / "mono.wav", pcm)
    np.testing.assert_allclose(load_wav(tmp_path / "mono.wav"), [0, 0.5, -1, 32767 / 32768])
    _write_wav(tmp_path / "stereo.wav", np.array([0, 16384, 32767, -32768], dtype="<i2"), channels=2)
    np.testing.assert_allclose(load_wav(tmp_path / "stereo.wav"), [0.25, (32767 - 32768) / 2 / 32768])
    _write_wav(tmp_path / "u8.wav", np.array([128, 255, 0], dtype=np.uint8), width=1)
    np.testing.assert_allclose(load_wav(tmp_path / "u8.wav"), [0, 127 / 128, -1])
    tone = (np.sin(2 * np.pi * 440 * np.arange(44100) / 44100) * 16384).astype("<i2")
    _write_wav(tmp_path / "44k.wav", tone, rate=44100)
    resampled = load_wav(tmp_path / "44k.wav")
    assert resampled.shape == (16000,) and resampled.dtype == np.float32
    want = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    np.testing.assert_allclose(resampled[200:-200], want[200:-200], atol=2e-3)
    assert load_wav(tmp_path / "44k.wav", sample_rate=None).shape == (44100,)
    with pytest.raises(AudioFileError, match="no audio file"):
        load_wav(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioFileError, match="PCM WAV"):
        load_wav(tmp_path / "text.wav")
    pre = WaveformPreprocess(16000)
    assert pre(tmp_path / "mono.wav").dtype == np.float32
    with pytest.raises(ShapeError, match="mono"):
        pre(np.zeros((2, 10)))


def _serve_tiny_recognizer(http_server, tmp_path, monkeypatch) -> dict[str, np.ndarray]:
    """Point wav2vec2_asr_base_960h's tag at a tiny model saved the fairseq way, on the local server."""
    api._ensure_zoo()
    entry = registry.get_entry("wav2vec2_asr_base_960h")
    state = {k: np.array(v.numpy()) for k, v in _tiny(seed=4).state_dict().items()}
    fairseq_like = dict(state)  # the upstream file has 3 extra dictionary rows in the CTC head
    fairseq_like["aux.weight"] = np.concatenate([state["aux.weight"][:1], np.zeros((3, 16), np.float32),
                                                 state["aux.weight"][1:]])  # fmt: skip
    fairseq_like["aux.bias"] = np.concatenate([state["aux.bias"][:1], np.zeros(3, np.float32), state["aux.bias"][1:]])
    ckpt = tmp_path / "w2v.pth"
    save_checkpoint(fairseq_like, ckpt, format="torch")
    data = ckpt.read_bytes()
    url = http_server.add("/audio/w2v.pth", data)
    (tag,) = entry.weights
    tag = dataclasses.replace(tag, url=url, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    monkeypatch.setitem(registry._REGISTRY, "wav2vec2_asr_base_960h", dataclasses.replace(
        entry, weights=(tag,), builder=lambda **kw: Wav2Vec2Model(TINY, labels=LIBRISPEECH_LABELS)))  # fmt: skip
    return state


def test_pretrained_path_applies_the_fairseq_fixups_and_transcribes(http_server, tmp_path, monkeypatch, capsys):
    state = _serve_tiny_recognizer(http_server, tmp_path, monkeypatch)
    model = hubkit.load("wav2vec2_asr_base_960h", pretrained=True)
    np.testing.assert_array_equal(model.aux.weight.numpy(), state["aux.weight"])
    assert len(model.transcribe(np.zeros(320, dtype=np.float32))) == 1
    pre = hubkit.get_weights("wav2vec2_asr_base_960h").transforms()
    assert isinstance(pre, WaveformPreprocess) and pre.sample_rate == 16000
    info = hubkit.model_info("wav2vec2_asr_base_960h")
    assert info["modality"] == "audio"
    assert info["weights"][0]["preprocessing"] == {"kind": "audio", "sample_rate": 16000}
    from hubkit.cli import main

    assert main(["info", "wav2vec2_asr_base_960h"]) == 0
    assert "mono waveform at 16000 Hz" in capsys.readouterr().out
    with pytest.raises(ArgumentError, match="transcribe"):
        tasks.predict("wav2vec2_asr_base_960h", ["x.jpg"])


def test_transcribe_api_and_cli(http_server, tmp_path, monkeypatch, capsys):
    from hubkit.cli import main

    _serve_tiny_recognizer(http_server, tmp_path, monkeypatch)
    speech = (np.sin(np.arange(8000) / 7) * 8000).astype("<i2")
    _write_wav(tmp_path / "a.wav", speech, rate=8000)  # resampled to 16 kHz on the way in
    texts = tasks.transcribe("wav2vec2_asr_base_960h", [tmp_path / "a.wav", np.zeros(800, dtype=np.float32)])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert main(["transcribe", "wav2vec2_asr_base_960h", str(tmp_path / "a.wav"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row == {"audio": str(tmp_path / "a.wav"), "text": texts[0]}
    assert main(["transcribe", "wav2vec2_asr_base_960h", str(tmp_path / "missing.wav")]) == 1
    assert "no audio file" in capsys.readouterr().err
    with pytest.raises(ArgumentError, match="speech recognizer"):
        tasks.transcribe("wav2vec2_base", [tmp_path / "a.wav"])
    with pytest.raises(hubkit.errors.ArgumentTypeError, match="list"):
        tasks.transcribe("wav2vec2_asr_base_960h", str(tmp_path / "a.wav"))


def test_registry_lists_the_audio_models():
    assert hubkit.list_models(modality="audio") == ["m5", "wav2vec2_asr_base_960h", "wav2vec2_base"]
    info = hubkit.model_info("wav2vec2_asr_base_960h")
    assert info["num_params"] == 94393245 and info["weights"][0]["sha256"].startswith("488fd4f1")


def test_m5_has_the_tutorials_shape_and_learns():
    from hubkit import optim
    from hubkit.zoo.audio import M5

    model = hubkit.load("m5")
    assert sum(p.numel() for p in model.parameters()) == 26915
    assert list(model.state_dict())[:7] == ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                            "bn1.running_var", "bn1.num_batches_tracked"]  # fmt: skip
    assert list(model.state_dict())[-2:] == ["fc1.weight", "fc1.bias"]
    # two "keywords": low and high tones; a few Adam steps separate them
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 8000  # one second at 8 kHz, as in the tutorial
    x = np.stack([np.sin(2 * np.pi * (300 if i % 2 else 2000) * t + rng.uniform(0, 6)) for i in range(16)])
    y = np.array([i % 2 for i in range(16)])
    hubkit.manual_seed(0)
    small = M5(n_output=2).train()
    opt = optim.Adam(small.parameters(), lr=0.01)
    xt, yt = hubkit.from_numpy(x[:, None].astype(np.float32)), hubkit.tensor(y)
    for _ in range(15):
        opt.zero_grad()
        loss = hubkit.nn.functional.nll_loss(small(xt)[:, 0], yt)
        loss.backward()
        opt.step()
    small.eval()
    with hubkit.no_grad():
        out = small(xt)
    assert out.shape == (16, 1, 2)
    assert (out.numpy()[:, 0].argmax(axis=1) == y).all()
    assert hubkit.list_models(task="keyword-spotting") == ["m5"]
