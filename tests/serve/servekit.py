"""Helpers for the serve tests: the real ``hubkit serve`` in a subprocess, small local models, and what the library
itself answers for the same inputs (the server must agree with it).

Models are random-weight checkpoints written to a temporary folder (nothing is downloaded; servers run with
``HUBKIT_OFFLINE=1``): shufflenet_v2_x0_5 and resnet18 (their last layer scaled so the top-5 probabilities are
well apart), a tiny sentence encoder as a Hugging Face folder, and a tiny wav2vec 2.0 recognizer.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CAT = REPO / "examples" / "cat.jpg"

TINY_BERT = {"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 24, "max_position_embeddings": 64}  # fmt: skip
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog",
         "##s", "run", "##ning", ".", ","]  # fmt: skip
TINY_ASR_KWARGS = {"conv_layers": [[8, 10, 5], [8, 3, 2]], "embed_dim": 16, "pos_conv_kernel": 4,
                   "pos_conv_groups": 2, "num_layers": 2, "num_heads": 2, "ffn_dim": 24, "dropout": 0.0,
                   "attention_dropout": 0.0}  # fmt: skip


def _state(model) -> dict:
    return {k: np.array(v.numpy()) for k, v in model.state_dict().items()}


def make_assets(root: Path) -> SimpleNamespace:
    """Write every checkpoint and input the tests use under ``root``."""
    import hubkit
    from hubkit.hub import save_checkpoint
    from hubkit.zoo.audio import LIBRISPEECH_LABELS, Wav2Vec2Config, Wav2Vec2Model
    from hubkit.zoo.text import BertConfig, SentenceEncoder

    out = SimpleNamespace(root=root, cat=CAT)
    for arch in ("shufflenet_v2_x0_5", "resnet18"):
        hubkit.manual_seed(0)
        model = hubkit.load(arch).eval()
        # A freshly initialised network's pooled features are tiny, so its logits are its random bias, the same
        # for every image. Zero the bias and scale the last layer to logits of std 3: the top 5 depend on the
        # image and are well apart (no near-ties that float rounding could reorder).
        with hubkit.no_grad():
            model.fc.bias.array[...] = 0
            logits = model(hubkit.from_numpy(_cat_pixels(arch))).numpy()
            model.fc.weight.array[...] *= np.float32(3.0 / logits.std())
        state = _state(model)
        folder = root / arch
        folder.mkdir()
        save_checkpoint(state, folder / "weights.safetensors", format="safetensors")
        setattr(out, arch, folder / "weights.safetensors")

    # a "fine-tuned" 10-class head, with TorchServe's index_to_name.json beside it (list values: last item wins)
    hubkit.manual_seed(3)
    tuned = hubkit.load("shufflenet_v2_x0_5", num_classes=10).eval()
    folder = root / "tuned"
    folder.mkdir()
    save_checkpoint(_state(tuned), folder / "weights.safetensors", format="safetensors")
    (folder / "index_to_name.json").write_text(json.dumps({str(i): [f"n{i:04d}", f"digit-{i}"] for i in range(10)}))
    out.tuned = folder / "weights.safetensors"
    bare = root / "tuned-bare"
    bare.mkdir()
    (bare / "weights.safetensors").write_bytes(out.tuned.read_bytes())
    out.tuned_bare = bare / "weights.safetensors"
    out.labels = root / "labels.json"
    out.labels.write_text(json.dumps({str(i): f"class-{i}" for i in range(1000)}))

    hubkit.manual_seed(1)
    st = root / "tiny-st"
    st.mkdir()
    encoder = SentenceEncoder(BertConfig(**TINY_BERT)).eval()
    save_checkpoint({k: v for k, v in _state(encoder).items() if k != "embeddings.position_ids"},
                    st / "model.safetensors", format="safetensors")  # fmt: skip
    (st / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert", **TINY_BERT}))
    (st / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (st / "sentence_bert_config.json").write_text('{"max_seq_length": 64, "do_lower_case": true}')
    out.text = st

    hubkit.manual_seed(2)
    config = Wav2Vec2Config(**{**TINY_ASR_KWARGS, "conv_layers": tuple(map(tuple, TINY_ASR_KWARGS["conv_layers"]))},
                            aux_num_out=len(LIBRISPEECH_LABELS))  # fmt: skip
    asr = Wav2Vec2Model(config, labels=LIBRISPEECH_LABELS).eval()
    out.asr = root / "asr.safetensors"
    save_checkpoint(_state(asr), out.asr, format="safetensors")

    out.wav = root / "speech.wav"
    write_wav(out.wav, tone(16000, 0.5), 16000)
    out.wav_8k = root / "speech_8k.wav"
    write_wav(out.wav_8k, tone(8000, 0.5), 8000)
    return out


def _cat_pixels(arch: str) -> np.ndarray:
    from PIL import Image

    from hubkit.hub import api

    with Image.open(CAT) as im:
        return api.get_weights(arch).transforms()(im.convert("RGB")).numpy()[None]


def tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    return (0.4 * np.sin(2 * math.pi * 220 * t) * np.sin(2 * math.pi * 3 * t) + 0.05 * rng.standard_normal(t.size))


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    import io

    buf = io.BytesIO()
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


# ---------------------------------------------------------------- what the library answers


def library_top5(arch: str, checkpoint: Path, image: Path) -> dict[str, float]:
    """The image classifier handler's answer, computed with hubkit in this process."""
    import hubkit
    from hubkit.hub import api

    model = hubkit.load(arch, weights=str(checkpoint))
    preprocess = api.get_weights(arch).transforms()
    categories = api.get_weights(arch).meta["categories"]
    from PIL import Image

    with Image.open(image) as im:
        x = preprocess(im.convert("RGB")).numpy()[None]
    with hubkit.no_grad():
        logits = model(hubkit.from_numpy(x)).numpy()[0].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")[:5]
    return {categories[i]: float(p[i]) for i in order}


def library_embeddings(folder: Path, texts: list[str]) -> np.ndarray:
    from hubkit.zoo.text import SentenceEncoder

    return SentenceEncoder.from_pretrained_dir(folder).encode(texts)


def library_transcript(checkpoint: Path, wav: Path) -> str:
    import hubkit
    from hubkit.zoo.audio import load_wav

    model = hubkit.load("wav2vec2_asr_base_960h", weights=str(checkpoint), **TINY_ASR_KWARGS)
    return model.transcribe(load_wav(wav, sample_rate=16000))[0]


def close_top5(got: dict[str, float], want: dict[str, float], tol: float = 1e-4) -> bool:
    return list(got) == list(want) and all(abs(got[k] - want[k]) <= tol * max(want[k], 1e-3) + 1e-7 for k in want)


# ---------------------------------------------------------------- the server in a subprocess


class ServeProcess:
    """``python -m hubkit.cli serve ARGS`` on ephemeral ports; ``inference``/``management``/``metrics`` are base
    URLs once the ready file appears (startup models loaded or failed)."""

    def __init__(self, args: list[str], workdir: Path, *, env: dict[str, str] | None = None,
                 timeout: float = 240.0) -> None:  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        self.ready_file = workdir / "ready.json"
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        full_env = {**os.environ, "HUBKIT_HOME": str(workdir / "home"), "HUBKIT_OFFLINE": "1",
                    "HUBKIT_NO_PROGRESS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}  # fmt: skip
        cmd = [sys.executable, "-m", "hubkit.cli", "serve", *args, "--port", "0", "--management-port", "0",
               "--metrics-port", "0", "--ready-file", str(self.ready_file)]  # fmt: skip
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env, cwd=workdir)
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"hubkit serve exited with {self.proc.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"hubkit serve was not ready within {timeout} s:\n{self.stderr()}")
            time.sleep(0.05)
        info = json.loads(self.ready_file.read_text())
        self.pid = info["pid"]
        self.inference, self.management, self.metrics = info["inference"], info["management"], info["metrics"]
        self.startup_models = info["models"]

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 120.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.terminate()
            try:
                return self.wait()
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels`` (0 when absent)."""
        import requests

        text = requests.get(f"{self.metrics}/metrics", timeout=30).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, value = line.rsplit(" ", 1)
            metric, _, rest = head.partition("{")
            if metric != name:
                continue
            pairs = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if p)
            if all(pairs.get(k) == f'"{v}"' for k, v in labels.items()):
                total += float(value)
        return total


def require_serve_extra() -> None:
    """Skip the calling test module, with the reason, when the serve extra is not installed."""
    import pytest

    for module in ("starlette", "uvicorn", "multipart", "requests", "PIL"):
        pytest.importorskip(module, reason=f"the serve tests need {module}: pip install 'hubkit[serve,test]'")
