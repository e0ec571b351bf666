"""Task pipelines on pretrained models: ``predict`` (image classes), ``embed`` (sentence vectors),
``transcribe`` (speech to text), ``generate_images`` (a PNG grid of generated images); what
``hubkit predict|embed|transcribe|generate`` run.

    from hubkit.tasks import predict
    predict("resnet18", ["cat.jpg"], topk=3)      # [[("tabby", 0.52), ("tiger cat", 0.21), ...]]

Each pipeline checks and reads its inputs before it fetches any weights, so a typo in a file name fails
at once instead of after a download.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.hub.api import fuse_for_inference, get_weights, list_models, load, split_name

__all__ = ["embed", "generate_images", "predict", "transcribe"]


def predict(
    name: str,
    images: Sequence[str | os.PathLike | Any],
    *,
    topk: int = 5,
    device: Any = None,
    progress: bool | None = None,
    batch_size: int = 16,
) -> list[list[tuple[str, float]]]:
    """Classify images with a pretrained classifier: per image, the ``topk`` (class name, probability) pairs.

    ``name`` is a model (its DEFAULT weights) or ``model.tag``; ``images`` are file paths (read with
    Pillow), PIL images or ``(H, W, 3)`` uint8 arrays. Each image goes through the weights' own
    preprocessing; probabilities are the softmax of the logits.
    """
    import numpy as np

    import hubkit

    if not isinstance(topk, int) or topk < 1:
        raise ArgumentError(f"topk must be a positive int, got {topk!r}")
    if isinstance(images, str | os.PathLike):
        raise ArgumentTypeError("predict takes a list of images; wrap a single one as [path]")
    entry, tag = split_name(name)
    if entry.modality != "vision":
        use = {"text": "encode([...])", "audio": "transcribe(waveform)"}.get(entry.modality, "forward")
        raise ArgumentError(
            f"predict classifies images, and {entry.name!r} is a {entry.modality} model ({entry.task}); use "
            f"hubkit.load({entry.name!r}, pretrained=True).{use} instead"
        )
    weights = get_weights(name)
    categories = weights.meta["categories"]
    if categories is None:
        raise ArgumentError(
            f"{weights.name} has no class names (it is a feature extractor); pick a classification tag of "
            f"{entry.name!r}: {', '.join(w.tag for w in entry.weights if w.categories is not None)}"
        )
    preprocess = weights.transforms()
    pixels = [preprocess(_read_image(img)).numpy() for img in images]
    model = fuse_for_inference(load(entry.name, weights=weights, device=device, progress=progress))
    k = min(topk, len(categories))
    results: list[list[tuple[str, float]]] = []
    with hubkit.no_grad():
        for start in range(0, len(pixels), batch_size):
            batch = hubkit.from_numpy(np.stack(pixels[start:start + batch_size]))
            if device is not None:
                batch = batch.to(device)
            logits = model(batch).cpu().numpy().astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            for row in probs:
                order = np.argsort(-row, kind="stable")[:k]
                results.append([(categories[i], float(row[i])) for i in order])
    return results


def embed(
    name: str, texts: Sequence[str], *, device: Any = None, progress: bool | None = None, batch_size: int = 32
) -> Any:
    """Embed ``texts`` with a pretrained text encoder: a float32 array (len(texts), dim) of the model's
    sentence embeddings (for all-MiniLM-L6-v2 unit vectors, so dot products are cosine similarities)."""
    entry, _ = split_name(name)
    if entry.modality != "text":
        raise ArgumentError(
            f"embed needs a text model, and {entry.name!r} is a {entry.modality} model ({entry.task}); "
            f"text models: {', '.join(list_models(modality='text')) or 'none registered'}"
        )
    if isinstance(texts, str):
        raise ArgumentTypeError("embed takes a list of strings; wrap a single text as [text]")
    model = load(entry.name, weights=get_weights(name), device=device, progress=progress)
    return model.encode(list(texts), batch_size=batch_size)


def transcribe(
    name: str, audio: Sequence[str | os.PathLike | Any], *, device: Any = None, progress: bool | None = None
) -> list[str]:
    """Transcribe speech with a pretrained recognizer: one string per item of ``audio`` (WAV paths, resampled
    to the model's rate, or 1-d float waveforms already at it)."""
    entry, _ = split_name(name)
    if entry.task != "speech-recognition":
        raise ArgumentError(
            f"transcribe needs a speech recognizer, and {entry.name!r} is a {entry.modality} model ({entry.task}); "
            f"recognizers: {', '.join(list_models(task='speech-recognition')) or 'none registered'}"
        )
    if isinstance(audio, str | os.PathLike):
        raise ArgumentTypeError("transcribe takes a list of files or waveforms; wrap a single one as [path]")
    weights = get_weights(name)
    preprocess = weights.transforms()
    waveforms = [preprocess(item) for item in audio]
    model = load(entry.name, weights=weights, device=device, progress=progress)
    return [model.transcribe(waveform)[0] for waveform in waveforms]


def generate_images(
    name: str,
    n: int = 4,
    seed: int | None = None,
    out: str | os.PathLike = "grid.png",
    *,
    nrow: int = 8,
    truncation: float | None = None,
    device: Any = None,
    progress: bool | None = None,
) -> Path:
    """Draw ``n`` images with a pretrained image generator and write them as one grid image; return its path.

    The grid is what the PyTorch Hub page shows: ``model.sample`` images (clamped to [-1, 1]), each stretched to
    [0, 1] by its own minimum and maximum (``make_grid(normalize=True, scale_each=True)``), ``nrow`` per row with
    2-pixel padding, so ``n`` images of side S make a ``(ceil(n / nrow) * (S + 2) + 2)`` by
    ``(min(n, nrow) * (S + 2) + 2)`` picture. ``seed`` makes the images repeatable; ``truncation`` redraws latent
    values beyond +-truncation (more typical images). PNG is written without extra packages; other suffixes
    (``.jpg``) need Pillow.
    """
    from hubkit.utils.image import save_image

    entry, _ = split_name(name)
    if entry.task != "image-generation":
        raise ArgumentError(
            f"generate_images needs an image generator, and {entry.name!r} is a {entry.modality} model "
            f"({entry.task}); image generators: {', '.join(list_models(task='image-generation')) or 'none registered'}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ArgumentError(f"n (the number of images) must be a positive int, got {n!r}")
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ArgumentError(f"nrow (images per row) must be a positive int, got {nrow!r}")
    path = Path(out).expanduser()
    if not path.parent.is_dir():
        raise ArgumentError(f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    if path.suffix.lower() not in ("", ".png"):
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise ArgumentError(f"writing {path.suffix} files needs Pillow (pip install 'hubkit[vision]'); a .png "
                                "works without it") from None
    model = load(entry.name, weights=get_weights(name), device=device, progress=progress)
    images = model.sample(n, seed=seed, truncation=truncation)
    save_image(images, path, nrow=nrow, normalize=True, scale_each=True)
    return path


def _read_image(img: Any) -> Any:
    """A path -> RGB PIL image; PIL images and arrays pass through."""
    if not isinstance(img, str | os.PathLike):
        return img
    from hubkit.errors import MissingDependencyError

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as e:
        raise MissingDependencyError(
            "Reading image files needs Pillow: pip install 'hubkit[vision]' (or pip install pillow)"
        ) from e
    path = Path(img).expanduser()
    if not path.is_file():
        raise ArgumentError(f"image {str(path)!r} does not exist (or is not a file); check the path")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Image.DecompressionBombError as e:
        raise ArgumentError(f"cannot read {str(path)!r}: {e} Shrink the image first; if you trust it, raise "
                            "PIL.Image.MAX_IMAGE_PIXELS before calling predict") from e
    except (UnidentifiedImageError, OSError) as e:
        raise ArgumentError(f"cannot read {str(path)!r} as an image ({e}); expected a JPEG, PNG or another "
                            f"format Pillow reads") from e
