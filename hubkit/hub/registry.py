"""The model registry: one entry per architecture, its weight tags declared as data.

A zoo module describes each architecture once, on its builder::

    @register_model(
        modality="vision", task="image-classification", default="IMAGENET1K_V1",
        weights=(WeightTag(tag="IMAGENET1K_V1", url=".../resnet18-f37072fd.pth", sha256_prefix="f37072fd",
                           transforms_factory=image_classification, ...),),
    )
    def resnet18(**kwargs) -> ResNet: ...

and ``hubkit.hub.api`` turns the table into ``load`` / ``list_models`` / ``model_info``. Nothing in
this module downloads, builds or imports a model: it only holds the table and answers look-ups
(tags case-insensitively, ``"DEFAULT"``, torchvision's ``"ResNet50_Weights.IMAGENET1K_V2"`` spelling,
and old upstream file names, which are aliases of their re-saved versions).
"""

from __future__ import annotations

import difflib
import math
import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hubkit.errors import ArgumentError, ModelNotFoundError
from hubkit.hub.transport.download import Resource

__all__ = [
    "AudioPreprocessing",
    "GenerationPreprocessing",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ExtraFile",
    "ModelEntry",
    "Preprocessing",
    "TextPreprocessing",
    "WeightAlias",
    "WeightTag",
    "entries",
    "get_entry",
    "register_model",
    "resolve_tag",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

StateDict = dict[str, Any]
KeyMap = Callable[[StateDict], StateDict]


@dataclass(frozen=True)
class Preprocessing:
    """The exact inference preprocessing a weight tag was evaluated with (torchvision's ImageClassification).

    Resize the shorter side to ``resize_size`` (``interpolation``, antialiased), center-crop
    ``crop_size`` x ``crop_size``, scale to [0, 1], normalize with ``mean``/``std`` per channel.
    """

    crop_size: int
    resize_size: int = 256
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    antialias: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "image-classification",
            "resize_size": self.resize_size,
            "crop_size": self.crop_size,
            "interpolation": self.interpolation,
            "antialias": self.antialias,
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass(frozen=True)
class TextPreprocessing:
    """How text is turned into token ids for a weight tag: a BERT WordPiece tokenizer built from the tag's
    ``vocab`` file (one of its ``files``), lower-casing and accent stripping as upstream configured it, and
    sequences truncated to ``max_length`` tokens."""

    vocab: str
    do_lower_case: bool = True
    strip_accents: bool | None = None
    tokenize_chinese_chars: bool = True
    max_length: int = 512
    tokenizer: str = "bert-wordpiece"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "text",
            "tokenizer": self.tokenizer,
            "vocab": self.vocab,
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "max_length": self.max_length,
        }


@dataclass(frozen=True)
class AudioPreprocessing:
    """What a waveform must be for an audio weight tag: mono float32 samples at ``sample_rate`` Hz."""

    sample_rate: int = 16000

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "audio", "sample_rate": self.sample_rate}


@dataclass(frozen=True)
class GenerationPreprocessing:
    """What an image generator's weight tag takes and gives: ``latent_dim`` standard-normal numbers per image
    in, ``(3, image_size, image_size)`` images with values nominally in ``output_range`` out. ``None`` where only
    the checkpoint's own configuration says (it decides the architecture when the weights are loaded)."""

    latent_dim: int | None = None
    image_size: int | None = None
    output_range: tuple[float, float] = (-1.0, 1.0)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "image-generation", "latent_dim": self.latent_dim, "image_size": self.image_size,
                "output_range": list(self.output_range)}


@dataclass(frozen=True)
class ExtraFile:
    """A file a weight tag needs besides its checkpoint (a tokenizer's vocabulary, ...), verified like it."""

    name: str
    url: str
    sha256: str
    size: int | None = None

    @property
    def resource(self) -> Resource:
        """What ``fetch`` needs to download and verify this file."""
        return Resource(url=self.url, sha256=self.sha256, size=self.size)


@dataclass(frozen=True)
class WeightAlias:
    """An older upstream file holding the same weights as its tag (e.g. pre-zip re-saves).

    ``sha256_prefix`` is set only where the file name's hex really is its sha256 prefix.
    """

    url: str
    sha256_prefix: str | None = None
    note: str = ""


@dataclass(frozen=True)
class WeightTag:
    """One set of published weights for an architecture.

    ``size`` is the exact byte size where known (checked on download); ``file_size_mb`` is the
    publisher's rounded figure, shown by ``model_info``. ``categories`` is a zero-argument callable so
    the 1000 class names are read only when asked for. ``model_kwargs`` are builder arguments these
    weights need (ViT at 384 px, ...). ``transforms_factory(tag, **kwargs)`` is set by the zoo (as
    torchvision's Weights carry ``transforms``) and builds the preprocessing these weights were evaluated
    with: :meth:`transforms` calls it, so the hub never needs to know what an image or a tokenizer is.
    """

    tag: str
    url: str
    num_params: int
    preprocessing: Preprocessing | TextPreprocessing | AudioPreprocessing | GenerationPreprocessing
    sha256_prefix: str | None = None
    sha256: str | None = None
    size: int | None = None
    file_size_mb: float | None = None
    format: str = "torch"
    license: str = "BSD-3-Clause"
    source: str = ""
    recipe: str = ""
    categories: Callable[[], tuple[str, ...]] | None = None
    num_classes: int = 1000
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    gflops: float | None = None
    min_size: tuple[int, int] = (1, 1)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[WeightAlias, ...] = ()
    mirrors: tuple[str, ...] = ()
    files: tuple[ExtraFile, ...] = ()
    transforms_factory: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", self.tag.upper())
        object.__setattr__(self, "metrics", MappingProxyType({k: dict(v) for k, v in self.metrics.items()}))
        object.__setattr__(self, "model_kwargs", MappingProxyType(dict(self.model_kwargs)))

    @property
    def filename(self) -> str:
        return posixpath.basename(urlsplit(self.url).path)

    @property
    def resource(self) -> Resource:
        """What ``fetch`` needs to download and verify the checkpoint: ``fetch(tag.resource)``. A full sha256
        makes the name's hash prefix redundant, so only one of them is checked."""
        return Resource(url=self.url, sha256=self.sha256, sha256_prefix=None if self.sha256 else self.sha256_prefix,
                        size=self.size, mirrors=self.mirrors)

    def transforms(self, **kwargs: Any) -> Any:
        """The preprocessing these weights were evaluated with (an image transform, a tokenizer, ...), built by
        the factory the zoo set; ``kwargs`` go to it (a tokenizer's ``progress=``)."""
        if self.transforms_factory is None:
            raise ArgumentError(
                f"weight tag {self.tag} declares no preprocessing ({self.preprocessing.as_dict()['kind']}); "
                "prepare inputs as the model's documentation says"
            )
        return self.transforms_factory(self, **kwargs)

    def file(self, name: str) -> ExtraFile:
        """The extra file called ``name`` (a tokenizer vocabulary, ...)."""
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"weight tag {self.tag} has no extra file {name!r}; it has {[f.name for f in self.files]}")

    def clean_metrics(self) -> dict[str, dict[str, float]]:
        """Metrics without the NaN placeholders upstream uses for 'not evaluated'."""
        out = {}
        for dataset, values in self.metrics.items():
            kept = {k: v for k, v in values.items() if not (isinstance(v, float) and math.isnan(v))}
            if kept:
                out[dataset] = kept
        return out


@dataclass(frozen=True)
class ModelEntry:
    """One architecture: how to build it and which weights exist for it.

    ``builder(**kwargs)`` returns an untrained module with upstream state-dict keys. ``default`` is the
    tag ``pretrained=True`` / ``weights="DEFAULT"`` picks; ``legacy_default`` is the tag torchvision's
    deprecated ``pretrained=True`` picks (they differ for weights re-trained with newer recipes).
    ``key_map`` rewrites historical checkpoint key names before a strict load. ``checkpoint_object``: the
    weight files hold more than a state dict (the GAN zoo saves ``{"config": ..., "netG": ..., "avgG": ...}``)
    and the model's ``load_state_dict`` reads that whole object, as upstream's does; ``hubkit.load`` then reads
    the file with ``load_object`` (the same data-only reader) instead of ``load_checkpoint``.
    """

    name: str
    builder: Callable[..., Any]
    modality: str
    task: str
    weights: tuple[WeightTag, ...] = ()
    default: str | None = None
    legacy_default: str | None = None
    key_map: KeyMap | None = None
    checkpoint_object: bool = False
    description: str = ""
    paper: str = ""

    def __post_init__(self) -> None:
        tags = [w.tag for w in self.weights]
        if len(set(tags)) != len(tags):
            raise ValueError(f"model {self.name!r} declares a weight tag twice: {tags}")
        for label, value in (("default", self.default), ("legacy_default", self.legacy_default)):
            if value is not None and value.upper() not in tags:
                raise ValueError(f"model {self.name!r}: {label} tag {value!r} is not among its tags {tags}")
        if self.default is not None:
            object.__setattr__(self, "default", self.default.upper())
        if self.legacy_default is not None:
            object.__setattr__(self, "legacy_default", self.legacy_default.upper())

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(w.tag for w in self.weights)

    def weight(self, tag: str) -> WeightTag:
        """The weight tag named ``tag`` (any case, ``"DEFAULT"``, ``"Enum_Weights.TAG"``, or an old file name)."""
        found = resolve_tag(self, tag)
        if found is None:
            suggestions = difflib.get_close_matches(tag.upper(), list(self.tags) + ["DEFAULT"], n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
            known = ", ".join(self.tags) if self.tags else "none (architecture only)"
            raise ModelNotFoundError(
                f"{self.name!r} has no weight tag {tag!r}.{hint} Its tags: {known}"
                + (f"; 'DEFAULT' is {self.default}." if self.default else ".")
            )
        return found


_REGISTRY: dict[str, ModelEntry] = {}


def _register(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry; a second entry under the same name is a programming error."""
    key = entry.name.lower()
    if key in _REGISTRY and _REGISTRY[key] is not entry:
        raise ValueError(f"model {entry.name!r} is registered twice ({_REGISTRY[key].builder} and {entry.builder})")
    _REGISTRY[key] = entry
    return entry


Builder = TypeVar("Builder", bound=Callable[..., Any])


def register_model(name: str | None = None, **entry: Any) -> Callable[[Builder], Builder]:
    """Register the decorated builder as a model (timm's ``@register_model``, with the entry's data given here).

    ``name`` defaults to the builder's ``__name__``; ``entry`` holds the other :class:`ModelEntry` fields
    (``modality``, ``task``, ``weights``, ``default``, ``legacy_default``, ``key_map``, ``description``,
    ``paper``, ...), checked when the entry is built. The builder is returned unchanged, so it stays a plain
    function users may call (``resnet18()`` is untrained)::

        @register_model(modality="audio", task="keyword-spotting", description="M5 keyword spotter")
        def m5(**kwargs) -> M5: ...
    """

    def decorate(builder: Builder) -> Builder:
        _register(ModelEntry(name=name or builder.__name__, builder=builder, **entry))
        return builder

    return decorate


def entries() -> Iterator[ModelEntry]:
    """Every registered entry, in registration order (``hubkit.hub.api`` imports the zoo first)."""
    return iter(list(_REGISTRY.values()))


def get_entry(name: str) -> ModelEntry | None:
    """The entry registered under ``name`` (case-insensitive), or ``None``."""
    return _REGISTRY.get(name.lower())


def names() -> list[str]:
    return list(_REGISTRY)


def resolve_tag(entry: ModelEntry, tag: str) -> WeightTag | None:
    """Find a weight tag of ``entry`` by tag name, ``DEFAULT``, enum spelling, URL or (old) file name."""
    wanted = tag.strip()
    if "." in wanted and "/" not in wanted and not wanted.endswith((".pth", ".pt", ".bin", ".safetensors")):
        wanted = wanted.rsplit(".", 1)[1]  # "ResNet50_Weights.IMAGENET1K_V2"
    upper = wanted.upper()
    if upper == "DEFAULT":
        upper = entry.default or ""
    for w in entry.weights:
        if w.tag == upper:
            return w
    base = posixpath.basename(urlsplit(wanted).path) if "/" in wanted else wanted
    for w in entry.weights:
        if base == w.filename or wanted == w.url:
            return w
        for alias in w.aliases:
            if wanted == alias.url or base == posixpath.basename(urlsplit(alias.url).path):
                return w
    return None


def find_by_file(url_or_name: str) -> tuple[ModelEntry, WeightTag, WeightAlias | None] | None:
    """The (entry, tag, alias) whose upstream URL or file name is ``url_or_name``, searching every entry."""
    base = posixpath.basename(urlsplit(url_or_name).path)
    for entry in _REGISTRY.values():
        for w in entry.weights:
            if url_or_name == w.url or base == w.filename:
                return entry, w, None
            for alias in w.aliases:
                if url_or_name == alias.url or base == posixpath.basename(urlsplit(alias.url).path):
                    return entry, w, alias
    return None
