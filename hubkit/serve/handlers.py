"""The model side of serving, run inside a worker process: build the model a spec names, turn request payloads
into model inputs, run a batch, and shape the answers as TorchServe's built-in handlers do.

- image classifiers (``image_classifier``): the weights' own preprocessing (resize, center crop, normalize), one
  forward pass per batch, softmax, top-5 as ``{label: probability}`` in descending order;
- sentence encoders: the embeddings as JSON arrays (one array per text);
- speech recognizers: the greedy CTC transcript as text.

A payload that cannot be used (an undecodable image, a decompression bomb, a WAV that cannot be read) fails
alone, as an :class:`~hubkit.serve.errors.HTTPError`; the rest of its batch is answered.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import HubkitError
from hubkit.serve.errors import ConfigError, HTTPError, bad_request, too_large

__all__ = ["HANDLER_TASKS", "build_handler", "run_batch"]

logger = logging.getLogger("hubkit.serve.worker")

# registry task -> what the frontend accepts for it
HANDLER_TASKS = {"image-classification": "image", "sentence-embedding": "text", "speech-recognition": "audio"}

# sentences embedded per forward pass; a request with more texts is split
TEXT_CHUNK = 64


def run_batch(handler: Any, payloads: Sequence[Any]) -> tuple[list[tuple[str, Any]], int]:
    """Run one batch: ``[("ok", answer) | ("err", HTTPError)]`` per payload, and the number of forward passes."""
    results: list[tuple[str, Any] | None] = [None] * len(payloads)
    good: list[tuple[int, Any]] = []
    for i, payload in enumerate(payloads):
        try:
            good.append((i, handler.preprocess(payload)))
        except HTTPError as e:
            results[i] = ("err", e)
        except HubkitError as e:
            results[i] = ("err", bad_request(str(e)))
        except Exception as e:  # a payload must never take the worker down
            logger.exception("preprocessing failed")
            results[i] = ("err", HTTPError(500, "InternalServerException", f"preprocessing failed: {e!r}"))
    calls = 0
    if good:
        try:
            outputs, calls = handler.infer([item for _, item in good])
        except Exception as e:
            logger.exception("inference failed")
            error = HTTPError(500, "InternalServerException", f"inference failed: {type(e).__name__}: {e}")
            outputs = [error] * len(good)
        for (i, _), out in zip(good, outputs):
            results[i] = ("err", out) if isinstance(out, HTTPError) else ("ok", out)
    return [r for r in results if r is not None], calls


def build_handler(spec: dict[str, Any]) -> Any:
    """The handler for ``spec`` (see :meth:`ModelConfig.worker_spec`), its model loaded and warmed up."""
    from hubkit.hub import api

    info = api.model_info(spec["arch"])
    kind = HANDLER_TASKS.get(info["task"])
    if kind == "image":
        return ImageClassifierHandler(spec, info)
    if kind == "text":
        return SentenceEmbeddingHandler(spec, info)
    if kind == "audio":
        return SpeechRecognitionHandler(spec, info)
    raise ConfigError(f"{spec['arch']} is a {info['modality']} model for {info['task']}; hubkit serve handles "
                      f"{', '.join(HANDLER_TASKS)}")  # fmt: skip


def _weights(spec: dict[str, Any], info: dict[str, Any]) -> Any:
    """The registry weights whose preprocessing (and labels, vocabulary) the served model uses, or None."""
    from hubkit.hub import api

    if spec["tag"]:
        return api.get_weights(f"{spec['arch']}.{spec['tag']}")
    return api.get_weights(spec["arch"]) if info["default"] else None


def _load_model(spec: dict[str, Any], info: dict[str, Any]) -> Any:
    from hubkit.hub import api

    arch, kwargs, device = spec["arch"], dict(spec["model_kwargs"]), spec["device"]
    if spec["checkpoint"] is not None:
        return api.load(arch, weights=spec["checkpoint"], device=device, **kwargs)
    if spec["tag"]:
        return api.load(f"{arch}.{spec['tag']}", device=device, **kwargs)
    if not info["default"]:
        raise ConfigError(f"{arch} has no published weights; serve it from a checkpoint: NAME={arch}:path/to/weights")
    return api.load(arch, pretrained=True, device=device, **kwargs)


def _local_checkpoint(spec: dict[str, Any]) -> Path | None:
    ckpt = spec["checkpoint"]
    if ckpt is None or ckpt.startswith(("http://", "https://")):
        return None
    return Path(ckpt.removeprefix("file://"))


# ---------------------------------------------------------------- images


def decode_image(data: bytes, max_pixels: int) -> Any:
    """Bytes -> RGB PIL image. The pixel count is checked from the header, before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise bad_request("the body is not an image Pillow can read (JPEG, PNG, GIF, BMP, WebP, TIFF, ...)") from None
    except Image.DecompressionBombError as e:
        raise too_large(f"decompression bomb refused: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise bad_request(f"the image header cannot be read ({e})") from None
    width, height = im.size
    if width * height > max_pixels:
        raise too_large(f"the image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
                        "(max_image_pixels); decompression bombs are refused before decoding")  # fmt: skip
    try:
        im.load()
        return im.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise bad_request(f"the image cannot be decoded ({e}); is the file truncated?") from None


def read_label_file(path: str | os.PathLike, num_outputs: int) -> list[str]:
    """TorchServe's ``index_to_name.json`` (``{"0": "tench", ...}``; a list value keeps its last element, as in
    ``["n01440764", "tench"]``) -> one label per output; indices it lacks are labelled by number."""
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the label file {path}: {e}") from None
    if not isinstance(mapping, dict):
        raise ConfigError(f"label file {path} must hold a JSON object mapping class index to name")
    labels = []
    for i in range(num_outputs):
        value = mapping.get(str(i), str(i))
        labels.append(str(value[-1] if isinstance(value, list) and value else value))
    return labels


class ImageClassifierHandler:
    kind = "image"

    def __init__(self, spec: dict[str, Any], info: dict[str, Any]) -> None:
        import hubkit
        from hubkit.hub import api
        from hubkit.zoo.vision.presets import ImageClassification

        self.device = spec["device"]
        self.max_pixels = int(spec["max_image_pixels"])
        self.topk = int(spec["topk"])
        weights = _weights(spec, info)
        self.transform = weights.transforms() if weights is not None else ImageClassification(crop_size=224)
        self.model = api.fuse_for_inference(_load_model(spec, info))
        self.model.eval()
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # decode_image applies max_pixels itself, with a 413 instead of a warning
        with hubkit.no_grad():
            warm = self._forward([self.transform(Image.new("RGB", (256, 256))).numpy()])
        if warm.ndim != 2:
            raise ConfigError(f"{spec['arch']} returned an output of shape {warm.shape}; an image classifier must "
                              "return (N, classes) logits")  # fmt: skip
        num_outputs = warm.shape[1]
        local = _local_checkpoint(spec)
        label_file = spec["labels"] or (local.parent / "index_to_name.json" if local is not None else None)
        categories = weights.meta["categories"] if weights is not None else None
        if label_file is not None and Path(label_file).is_file():
            self.labels = read_label_file(label_file, num_outputs)
        elif spec["labels"]:
            raise ConfigError(f"label file {spec['labels']} does not exist")
        elif categories is not None and len(categories) == num_outputs:
            self.labels = list(categories)
        else:
            self.labels = [str(i) for i in range(num_outputs)]
        self.describe = {"kind": self.kind, "classes": num_outputs, "preprocessing": repr(self.transform)}

    def _forward(self, arrays: list[np.ndarray]) -> np.ndarray:
        import hubkit

        batch = hubkit.from_numpy(np.ascontiguousarray(np.stack(arrays)))
        if self.device is not None:
            batch = batch.to(self.device)
        return self.model(batch).cpu().numpy()

    def preprocess(self, payload: bytes) -> np.ndarray:
        return self.transform(decode_image(payload, self.max_pixels)).numpy()

    def infer(self, items: list[np.ndarray]) -> tuple[list[dict[str, float]], int]:
        import hubkit

        with hubkit.no_grad():
            logits = self._forward(items).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        k = min(self.topk, probs.shape[1])
        out = []
        for row in probs:
            order = np.argsort(-row, kind="stable")[:k]
            out.append({self.labels[i]: float(row[i]) for i in order})
        return out, 1


# ---------------------------------------------------------------- text


class SentenceEmbeddingHandler:
    kind = "text"

    def __init__(self, spec: dict[str, Any], info: dict[str, Any]) -> None:
        local = _local_checkpoint(spec)
        if local is not None and local.is_dir():
            from hubkit.zoo.text import SentenceEncoder

            model = SentenceEncoder.from_pretrained_dir(local, **spec["model_kwargs"])
            if spec["device"] is not None:
                model = model.to(spec["device"])
        else:
            model = _load_model(spec, info)
            if getattr(model, "tokenizer", None) is None:
                model.tokenizer = self._tokenizer(spec, info, local)
        self.model = model
        self.model.encode(["warm up"])
        self.describe = {"kind": self.kind, "dim": int(self.model.config.hidden_size),
                         "max_seq_length": int(self.model.max_seq_length)}  # fmt: skip

    @staticmethod
    def _tokenizer(spec: dict[str, Any], info: dict[str, Any], local: Path | None) -> Any:
        from hubkit.zoo.text.tokenizers import BertTokenizer

        if local is not None and (local.parent / "vocab.txt").is_file():
            return BertTokenizer.from_pretrained_dir(local.parent)
        weights = _weights(spec, info)
        if weights is None:
            raise ConfigError(f"{spec['arch']}: no vocab.txt beside {spec['checkpoint']} and no registry vocabulary; "
                              "put the vocab.txt the model was trained with next to the checkpoint")  # fmt: skip
        return weights.tokenizer()

    def preprocess(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def infer(self, items: list[dict[str, Any]]) -> tuple[list[Any], int]:
        texts = [t for item in items for t in item["texts"]]
        emb = self.model.encode(texts, batch_size=TEXT_CHUNK)
        out, start = [], 0
        for item in items:
            rows = emb[start:start + len(item["texts"])].tolist()
            start += len(item["texts"])
            out.append(rows[0] if item["single"] else rows)
        return out, -(-len(texts) // TEXT_CHUNK)


# ---------------------------------------------------------------- audio


class SpeechRecognitionHandler:
    kind = "audio"

    def __init__(self, spec: dict[str, Any], info: dict[str, Any]) -> None:
        weights = _weights(spec, info)
        self.sample_rate = int(weights.transforms().sample_rate) if weights is not None else 16000
        self.model = _load_model(spec, info)
        self.model.transcribe(np.zeros(self.sample_rate, dtype=np.float32))
        self.describe = {"kind": self.kind, "sample_rate": self.sample_rate}

    def preprocess(self, payload: bytes) -> np.ndarray:
        from hubkit.zoo.audio import load_wav

        if len(payload) < 12 or payload[:4] != b"RIFF" or payload[8:12] != b"WAVE":
            raise bad_request("the body is not a WAV file (no RIFF/WAVE header); send PCM WAV audio")
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            f.write(payload)
            f.flush()
            try:
                wav = load_wav(f.name, sample_rate=self.sample_rate)
            except HubkitError as e:
                raise bad_request(str(e).replace(f.name, "the WAV")) from None
        config = getattr(self.model, "config", None)
        if config is not None and hasattr(config, "num_frames") and config.num_frames(wav.shape[0]) < 1:
            raise bad_request(f"the audio is {wav.shape[0]} samples at {self.sample_rate} Hz, too short for one "
                              "frame of the model")  # fmt: skip
        return wav

    def infer(self, items: list[np.ndarray]) -> tuple[list[Any], int]:
        # One utterance per forward pass: wav2vec 2.0 base normalises its first conv layer over the whole
        # (padded) length, so padding a batch would change the transcripts.
        return [self.model.transcribe(wav)[0] for wav in items], len(items)
