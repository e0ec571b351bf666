"""``hubkit.load``, ``list_models``, ``model_info`` and ``get_weights``: the registry as a user sees it.

    import hubkit
    model = hubkit.load("resnet50", pretrained=True)             # ResNet50 IMAGENET1K_V2, eval mode
    preprocess = hubkit.get_weights("resnet50").transforms()     # its exact preprocessing
    hubkit.list_models("resnet*")                                # ['resnet18', 'resnet34', 'resnet50', ...]
    ckpt = hubkit.load("checkpoint.pt", map_location="cpu")      # a file: torch.load's meaning

``hubkit.load`` takes a file (a file object, a ``Path``, an existing file, or a str that looks like a
path), a Hugging Face model folder or repo (``"hf:ORG/NAME"``), or a model name; :func:`load` spells out the rule.

Names are architectures (``"resnet50"``) or architecture.tag (``"resnet50.imagenet1k_v1"``); tags are
case-insensitive, ``"DEFAULT"`` names the recommended tag, and torchvision's enum spelling
(``"ResNet50_Weights.IMAGENET1K_V1"``) is understood too.

``pretrained=True`` means the DEFAULT tag, which is what torchvision's ``weights="DEFAULT"`` loads. It
is *not* what torchvision's deprecated ``pretrained=True`` loads: that legacy flag always picks
IMAGENET1K_V1. The two differ wherever torchvision re-trained weights with a newer recipe — resnet50,
resnet101, resnet152, resnext50_32x4d, wide_resnet50_2, mobilenet_v2 and mobilenet_v3_large, whose
DEFAULT is IMAGENET1K_V2 (for resnet50: 80.9% instead of 76.1% top-1, and a 232-pixel resize instead of
256). Pass ``weights="IMAGENET1K_V1"`` to reproduce old torchvision code exactly; ``model_info`` lists
the legacy tag as ``legacy_default``.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from hubkit.errors import (
    ArgumentError,
    ArgumentTypeError,
    CheckpointNotFoundError,
    ModelNotFoundError,
)
from hubkit.hub import registry
from hubkit.hub.registry import (
    GenerationPreprocessing,
    ModelEntry,
    TextPreprocessing,
    WeightAlias,
    WeightTag,
)

__all__ = [
    "Weights", "fuse_for_inference", "get_weights", "is_model_name", "list_models", "load", "model_info",
    "split_name", "weight_resources",
]

logger = logging.getLogger("hubkit.hub.api")

# Packages whose import registers model entries; imported on the first registry question.
ZOO_PACKAGES: tuple[str, ...] = ("hubkit.zoo.vision", "hubkit.zoo.text", "hubkit.zoo.audio", "hubkit.zoo.generative")

_URL_SCHEMES = ("http://", "https://", "file://")


def _ensure_zoo() -> None:
    for package in ZOO_PACKAGES:
        importlib.import_module(package)


# ---------------------------------------------------------------- name resolution


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def _entry(arch: str) -> ModelEntry:
    _ensure_zoo()
    entry = registry.get_entry(arch)
    if entry is None and arch.lower().endswith("_weights"):  # "ResNet50_Weights" -> "resnet50"
        entry = registry.get_entry(arch[: -len("_weights")])
    if entry is None:
        known = sorted(registry.names(), key=_natural_key)
        close = difflib.get_close_matches(arch.lower(), known, n=4, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ModelNotFoundError(
            f"No model named {arch!r} is registered.{hint} "
            f"List the {len(known)} known models with hubkit.list_models() or `hubkit models`."
        )
    return entry


def split_name(name: str) -> tuple[ModelEntry, str | None]:
    """``"resnet50.imagenet1k_v2"`` -> (resnet50's entry, ``"imagenet1k_v2"``); no dot -> (entry, None)."""
    if not isinstance(name, str) or not name.strip():
        raise ArgumentTypeError(f"a model name must be a non-empty string like 'resnet50', got {name!r}")
    arch, _, tag = name.strip().partition(".")
    return _entry(arch), (tag or None)


def _tag(entry: ModelEntry, tag: str) -> WeightTag:
    return entry.weight(tag)


# ---------------------------------------------------------------- Weights


class Weights:
    """One weight tag of one architecture, as torchvision's ``Weights`` enum members behave.

    ``url``, ``meta`` (``categories``, ``num_params``, ``min_size``, ``_metrics``, ``_ops``,
    ``_file_size``, ``recipe``, plus ``license``, ``source``, ``sha256_prefix``), ``transforms()`` (the
    exact preprocessing, a callable image -> ``(3, crop, crop)`` Tensor) and ``get_state_dict()``.
    """

    def __init__(self, model: str, tag: WeightTag) -> None:
        self.model = model
        self.tag = tag.tag
        self.entry = tag

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def url(self) -> str:
        return self.entry.url

    @property
    def meta(self) -> dict[str, Any]:
        w = self.entry
        return {
            "categories": list(w.categories()) if w.categories is not None else None,
            "num_params": w.num_params,
            "min_size": w.min_size,
            "recipe": w.recipe,
            "_metrics": w.clean_metrics() or dict(w.metrics),
            "_ops": w.gflops,
            "_file_size": w.file_size_mb,
            "license": w.license,
            "source": w.source,
            "sha256_prefix": w.sha256_prefix,
            "sha256": w.sha256,
            "format": w.format,
        }

    def transforms(self) -> Any:
        """The preprocessing these weights were evaluated with, as the zoo builds it (``WeightTag.transforms``): for
        images a callable image -> float32 Tensor ``(3, crop, crop)``; for text the tokenizer; for audio a callable
        WAV path or array -> float32 mono waveform at the model's sample rate."""
        if isinstance(self.entry.preprocessing, GenerationPreprocessing):
            raise ArgumentError(f"{self.name} are image-generator weights: the model takes random latent vectors, "
                                f"not images, so there is no preprocessing. Draw images with "
                                f"hubkit.load({self.model!r}, pretrained=True).sample(n, seed=0).")
        return self.entry.transforms()

    def fetch(self, *, progress: bool | None = None) -> Path:
        """Download (or find in the cache or a mirror) and verify the checkpoint file; return its path."""
        from hubkit.hub import fetch

        return fetch(self.entry.resource, progress=progress)

    def fetch_file(self, name: str, *, progress: bool | None = None) -> Path:
        """Download (or find) and verify one of the tag's extra files (``"vocab.txt"``, ...); return its path."""
        from hubkit.hub import fetch

        return fetch(self.entry.file(name).resource, progress=progress)

    def tokenizer(self, *, progress: bool | None = None) -> Any:
        """The tokenizer these text weights were trained with, built from the tag's verified tokenizer file:
        ``tok(["a sentence", ...], padding=True, return_tensors="np")`` -> ``input_ids``/``attention_mask``/..."""
        if not isinstance(self.entry.preprocessing, TextPreprocessing):
            raise ArgumentError(f"{self.name} are image weights; they have no tokenizer (use .transforms())")
        return self.entry.transforms(progress=progress)

    def get_state_dict(self, *, progress: bool | None = None) -> dict[str, Any]:
        """``{key: ndarray}`` of the checkpoint, fetched and verified, upstream key names unchanged."""
        from hubkit.hub.checkpoint.formats import load_checkpoint

        return load_checkpoint(self.fetch(progress=progress), mmap=True)  # the cache only ever renames files

    def __repr__(self) -> str:
        return f"Weights({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Weights) and (self.model, self.entry) == (other.model, other.entry)

    def __hash__(self) -> int:
        return hash((self.model, self.tag, self.url))


def get_weights(name: str) -> Weights:
    """The weights named ``name``: ``"resnet50"`` (its DEFAULT), ``"resnet50.IMAGENET1K_V1"``,
    ``"ResNet50_Weights.IMAGENET1K_V1"``, ``"resnet50.DEFAULT"``.

    Raises:
        ModelNotFoundError: unknown architecture or tag (close matches suggested), or an architecture
            without published weights.
    """
    entry, tag = split_name(name)
    if tag is None:
        if entry.default is None:
            raise ModelNotFoundError(
                f"{entry.name!r} has no published weights (architecture only); train it, or load your own "
                f"checkpoint with hubkit.load({entry.name!r}, weights='path/to/checkpoint')."
            )
        tag = entry.default
    return Weights(entry.name, _tag(entry, tag))


# ---------------------------------------------------------------- load


# what hubkit.load reads as a file path even when no such file exists (a model name never ends so)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".npz", ".tar")


def load(
    f: str | os.PathLike | BinaryIO,
    map_location: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    pretrained: bool = False,
    weights: str | os.PathLike | Mapping[str, Any] | Weights | None = None,
    device: Any = None,
    progress: bool | None = None,
    strict: bool = True,
    key: str | Sequence[str] | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    **model_kwargs: Any,
) -> Any:
    """Load a checkpoint file, as ``torch.load`` does, build a registered model by name, or build the model of a
    Hugging Face folder or repo.

    Which one ``f`` means (decided before anything is read, in this order):

    1. a binary file object (it has ``.read``) is a checkpoint file;
    2. a str starting with ``hf:`` (``"hf:ORG/NAME"``) is a Hugging Face repo: its files are downloaded (or found
       in hubkit's or the Hugging Face cache), verified, and loaded as a folder (rule 3);
    3. a str or ``os.PathLike`` naming an existing directory is a model folder in the transformers or
       sentence-transformers layout (``config.json`` and its weights, tokenizer files, ``modules.json``);
    4. any other ``os.PathLike`` (``pathlib.Path``) is a checkpoint file, existing or not;
    5. a str that names an existing file is a checkpoint file (even when it is also a model name);
    6. a str with a path separator (``/``) or a checkpoint suffix (.pt, .pth, .bin, .ckpt, .safetensors,
       .npz, .tar) that names nothing raises :class:`CheckpointNotFoundError`, never "no model named";
    7. any other str is a model name (``"resnet50"``, ``"resnet50.imagenet1k_v1"``).

    **Folders and repos.** ``hubkit.load("hf:ORG/NAME", *, revision=None, token=None, device=None,
    progress=None)`` and ``hubkit.load(folder, *, device=None)`` build the hubkit model of ``config.json``'s
    ``model_type`` (bert — a sentence-transformers pipeline gives a ``SentenceEncoder`` —, distilbert, roberta,
    gpt2, wav2vec2; see :mod:`hubkit.zoo.hf`; any other family is an error listing these), load its weights
    strictly, attach its tokenizer (text models then have ``model.tokenize(texts)``) and return it in ``eval()``
    mode. ``revision`` (a branch, tag or commit; default ``"main"``) is resolved to a commit once and recorded, so
    later loads get the same files, offline too; ``token`` (default ``HF_TOKEN``) is for gated and private repos.
    See :mod:`hubkit.hub.hf` for caching, verification and ``HF_ENDPOINT``.

    **Files.** ``hubkit.load(f, map_location=None, *, weights_only=True, mmap=None)`` returns what
    ``torch.load(f, map_location, weights_only=True, mmap=mmap)`` returns, with hubkit Tensors: the
    saved structure (dicts, OrderedDicts, lists, tuples, numbers, strings, None), tensors with their
    dtypes, Parameters as Parameters, storages shared as saved. Torch's zip format (torch >= 1.6, and
    ``hubkit.save``), its legacy formats, safetensors and npz (a ``{name: Tensor}`` dict) are read.
    ``map_location`` is torch's: ``None`` (where each tensor was saved), a device (``"cpu"``,
    ``"cuda:1"``), a dict of saved -> new locations, or ``fn(storage, location)``. ``mmap=True`` maps the
    file copy-on-write instead of reading it (paths only). ``weights_only=False`` is refused: hubkit
    reads torch pickles with a data-only machine and never runs code from a file.

    **Models.** ``hubkit.load(name, *, pretrained=False, weights=None, device=None, progress=None, strict=True,
    key=None, features_only=False, out_indices=None, **model_kwargs)`` builds the model and, when asked, loads
    weights into it:

    Args:
        f: a checkpoint file (see above), or an architecture (``"resnet50"``) or architecture.tag
            (``"resnet50.imagenet1k_v1"``; the tag loads those weights).
        map_location, weights_only, mmap: files only (above).
        pretrained: ``True`` loads the DEFAULT tag — torchvision's ``weights="DEFAULT"``, which is not
            always torchvision's legacy ``pretrained=True`` (that one means IMAGENET1K_V1; see the module
            docstring).
        weights: a tag (``"IMAGENET1K_V2"``, ``"DEFAULT"``, ``"ResNet50_Weights.IMAGENET1K_V2"``), a
            ``Weights`` object, a local checkpoint path (torch, safetensors or npz), an ``http(s)://`` or
            ``file://`` URL (cached like any download; a URL of a registered file, old names included, is
            verified against its hash), or a ``{key: array}`` state dict.
        device: where the model's parameters live (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``Device``).
        progress: download progress bar on/off; ``None`` shows it when stderr is a terminal.
        strict: ``True`` (the default) requires every key of the weights to match the model, as
            ``load_state_dict(strict=True)``; ``False`` loads the matching keys and logs the others (shape
            mismatches still fail).
        key: a weights file that wraps its state dict in a container (``{"epoch": 3, "model": {...}}``): the
            key to unwrap, or a sequence of keys for deeper nesting.
        features_only: timm's: return the trunk of a vision-zoo classifier (``FeatureListNet``), whose forward
            gives the feature maps of its stages (``model.feature_info.channels()``, ``.reduction()``).
        out_indices: with ``features_only``, the stages to return (default all; an int ``n``: the last ``n``).
        **model_kwargs: builder arguments (``num_classes=10``, ``dropout=0.3``). With a weight tag, a vision-zoo
            classifier given another ``num_classes`` gets the pretrained trunk and a freshly initialised head of
            that size (timm's ``reset_classifier``); other models need the tag's ``num_classes``.

    Returns:
        For a file, the loaded object. For a model: with weights it is in ``eval()`` mode (loaded
        strictly unless ``strict=False``); without weights it is freshly initialised in training mode, as
        PyTorch builders return it. Vision-zoo classifiers carry timm's ``pretrained_cfg`` (of the tag loaded,
        else the DEFAULT tag).

    Raises:
        CheckpointNotFoundError: ``f`` is read as a file path (rules 4 and 6) and names no file.
        UnsafeCheckpointError: the file's pickle names a global outside the allowlist (nothing is run).
        ModelNotFoundError: unknown model or tag (close matches suggested), or pretrained weights asked of
            an architecture that has none.
        ArgumentError: file arguments given with a model name or model arguments with a file,
            ``weights_only=False``, conflicting weight sources (two of them, num_classes vs categories), or a folder
            or repo of a family hubkit does not implement.
        GatedRepoError: a Hugging Face repo refused access (set ``HF_TOKEN``, accept its terms).
        DownloadError / IntegrityError / OfflineError: the weights could not be fetched and verified.
        CheckpointError / StateDictError: the file is unreadable or does not fit the architecture.
    """
    kind = _source_kind(f)
    if kind in ("hf", "folder"):
        given = [label for label, on in (("map_location=", map_location is not None),
                                         ("weights_only=", weights_only is not None), ("mmap=", mmap is not None),
                                         ("pretrained=", pretrained is not False), ("weights=", weights is not None),
                                         ("strict=", strict is not True), ("key=", key is not None),
                                         ("features_only=", features_only), ("out_indices=", out_indices is not None),
                                         ("revision=", kind == "folder" and revision is not None),
                                         ("token=", kind == "folder" and token is not None)) if on]
        given += [f"{name}=" for name in model_kwargs]
        if given:
            what = "a Hugging Face repo" if kind == "hf" else "a model folder"
            shadow = (f" The folder {os.path.abspath(f)} shadows the model {f!r}: rename or move it to build the "
                      "registered model." if kind == "folder" and isinstance(f, str) and is_model_name(f) else "")
            raise ArgumentError(
                f"hubkit.load({_describe_file(f)}) loads {what}, which takes "
                f"{'revision=, token=, device= and progress=' if kind == 'hf' else 'device='}; "
                f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply (the folder's config.json "
                f"decides the architecture and its weights are loaded strictly).{shadow}"
            )
        return _load_hf(f, kind, revision=revision, token=token, device=device, progress=progress)
    if revision is not None or token is not None:
        raise ArgumentError(f"hubkit.load({_describe_file(f)}): revision= and token= are for Hugging Face repos "
                            "(hubkit.load('hf:ORG/NAME', revision=...)); registered models pin their files already.")
    if kind == "file":
        model_args = [label for label, given in (("pretrained=", pretrained is not False),
                                                 ("weights=", weights is not None), ("device=", device is not None),
                                                 ("progress=", progress is not None), ("strict=", strict is not True),
                                                 ("key=", key is not None), ("features_only=", features_only),
                                                 ("out_indices=", out_indices is not None)) if given]
        model_args += [f"{name}=" for name in model_kwargs]
        if model_args:
            hint = " (use map_location= to choose the device)" if "device=" in model_args else ""
            pickle_hint = (" hubkit reads pickles with its own data-only machine, so pickle_module= and "
                           "pickle arguments have no meaning." if set(model_kwargs) & _PICKLE_ARGS else "")
            shadow = (f" The file {os.path.abspath(f)} shadows the model {f!r}: rename or move it to load the model."
                      if isinstance(f, str) and is_model_name(f) else "")
            raise ArgumentError(
                f"hubkit.load({_describe_file(f)}) reads a checkpoint file, which takes map_location=, weights_only= "
                f"and mmap=; {', '.join(model_args)} {'is' if len(model_args) == 1 else 'are'} for model names"
                f"{hint}.{pickle_hint}{shadow} Build the model by name (hubkit.load('resnet18', ...)) and load the "
                "file's state dict into it with model.load_state_dict(hubkit.load(path))."
            )
        if weights_only is False:
            raise ArgumentError(
                f"hubkit.load({_describe_file(f)}, weights_only=False): hubkit never unpickles arbitrary objects, "
                "because that runs code named by the file. It reads what torch.load(weights_only=True) reads "
                "(tensors, numbers, strings, dicts, lists, tuples): drop weights_only=False. A file that holds "
                "more (a pickled module, custom classes) must be opened with torch itself and re-saved as a "
                "state dict."
            )
        from hubkit.hub.checkpoint.state import load_file

        return load_file(f, map_location=map_location, mmap=mmap)
    name = f
    file_args = [label for label, given in (("map_location=", map_location is not None),
                                            ("weights_only=", weights_only is not None),
                                            ("mmap=", mmap is not None)) if given]
    if file_args:
        raise ArgumentError(
            f"hubkit.load({name!r}): {', '.join(file_args)} {'is' if len(file_args) == 1 else 'are'} for checkpoint "
            f"files, and {name!r} is read as a model name: it names no existing file and has no path separator or "
            f"checkpoint suffix ({', '.join(CHECKPOINT_SUFFIXES)}). Pass a file's path (or a pathlib.Path) to load "
            "a checkpoint; place a model with device=."
        )
    return _load_model(name, pretrained=pretrained, weights=weights, device=device, progress=progress, strict=strict,
                       key=key, features_only=features_only, out_indices=out_indices, model_kwargs=model_kwargs)


def _load_model(name: str, *, pretrained: bool, weights: Any, device: Any, progress: bool | None, strict: bool,
                key: str | Sequence[str] | None, features_only: bool, out_indices: int | Sequence[int] | None,
                model_kwargs: dict[str, Any]) -> Any:
    """:func:`load` for a model name (see there)."""
    entry, name_tag = split_name(name)
    if not isinstance(strict, bool):
        raise ArgumentTypeError(f"strict must be True or False, got {strict!r}")
    source = _weight_source(entry, name_tag, pretrained, weights)
    if source is None and (strict is not True or key is not None):
        raise ArgumentError(f"hubkit.load({entry.name!r}): strict= and key= apply to weights being loaded; pass "
                            "weights= (or pretrained=True) too, or drop them.")
    if key is not None and isinstance(source, Mapping):
        raise ArgumentError(f"hubkit.load({entry.name!r}): key= unwraps a checkpoint file; weights= is already a "
                            "dict, so pass the state dict inside it (weights=ckpt['model']) instead.")
    if out_indices is not None and not features_only:
        raise ArgumentError(f"hubkit.load({entry.name!r}): out_indices= chooses the stages of features_only=True; "
                            "pass features_only=True too, or drop out_indices=.")
    tag = source if isinstance(source, WeightTag) else None
    kwargs, num_classes = _builder_kwargs(entry, tag, model_kwargs)
    model = entry.builder(**kwargs)
    if num_classes is not None and not hasattr(model, "reset_classifier"):
        raise ArgumentError(
            f"{entry.name}.{tag.tag} needs num_classes={tag.num_classes}, got num_classes={num_classes}: its head "
            f"cannot be reset. Load the weights with the default num_classes and replace the layer afterwards "
            f"(fine-tuning), or drop num_classes=."
        )
    if features_only and not hasattr(model, "forward_intermediates"):
        raise ArgumentError(f"hubkit.load({entry.name!r}, features_only=True): feature maps are timm's interface "
                            f"of the vision zoo's classifiers, and {entry.name!r} is a {entry.modality} model "
                            f"({entry.task}); use its forward outputs instead.")
    if source is not None:
        state = _state_dict(source, progress, key, whole=entry.checkpoint_object and key is None)
        if entry.key_map is not None:
            state = entry.key_map(dict(state))
        result = model.load_state_dict(state, strict=strict)
        if result is not None and (result.missing_keys or result.unexpected_keys):
            logger.warning("%s loaded with strict=False: missing keys %s, unexpected keys %s", entry.name,
                           list(result.missing_keys), list(result.unexpected_keys))
        model.eval()
        if tag is not None and isinstance(tag.preprocessing, TextPreprocessing) and hasattr(model, "tokenizer"):
            model.tokenizer = tag.transforms(progress=progress)
    if num_classes is not None:
        model.reset_classifier(num_classes)
    if hasattr(model, "set_pretrained_cfg"):
        model.set_pretrained_cfg(entry.name, tag or (entry.weight(entry.default) if entry.default else None))
    if features_only:
        from hubkit.zoo.vision.backbone import FeatureListNet

        model = FeatureListNet(model, out_indices)
    if device is not None:
        model = model.to(device)
    return model


_PICKLE_ARGS = {"pickle_module", "encoding", "fix_imports", "errors", "buffers"}


def _load_hf(f: str | os.PathLike, kind: str, *, revision: str | None, token: str | bool | None, device: Any,
             progress: bool | None) -> Any:
    """:func:`load` for a Hugging Face repo (``kind="hf"``) or a model folder (``kind="folder"``)."""
    from hubkit.zoo.hf import FolderFiles, load_pretrained

    if kind == "hf":
        from hubkit.hub.hf import HubRepo, RepoFiles, split_hf_name

        files: Any = RepoFiles(HubRepo(split_hf_name(f), revision, token=token, progress=progress))
    else:
        files = FolderFiles(Path(f))
    model = load_pretrained(files)
    if device is not None:
        model = model.to(device)
    return model


def _source_kind(f: Any) -> str:
    """The rule of :func:`load`: ``"file"``, ``"hf"`` (a Hugging Face repo), ``"folder"`` or ``"name"``; raises
    for a path that names nothing."""
    if callable(getattr(f, "read", None)):
        return "file"
    if isinstance(f, str) and f.startswith("hf:"):
        return "hf"
    if isinstance(f, (str, os.PathLike)) and os.fspath(f) and Path(os.fspath(f)).expanduser().is_dir():
        return "folder"
    return "file" if _is_checkpoint_file(f) else "name"


def _is_checkpoint_file(f: Any) -> bool:
    """Rules 4-7 of :func:`load`: True for a file, False for a model name; raises for a missing file path."""
    if callable(getattr(f, "read", None)) or isinstance(f, os.PathLike):
        return True
    if not isinstance(f, str):
        raise ArgumentTypeError(f"hubkit.load expects a model name (str), a file path (str or os.PathLike) or a "
                                f"binary file object; got a {type(f).__name__}")
    path = Path(f)
    if path.is_file():
        return True
    separators = {"/", os.sep, os.altsep} - {None}
    if any(sep in f for sep in separators) or path.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise CheckpointNotFoundError(
            f"hubkit.load({f!r}): no such file (looked for {path.absolute()}). A str with a path separator or a "
            f"checkpoint suffix ({', '.join(CHECKPOINT_SUFFIXES)}) is read as a file path, never as a model name; "
            "check the path and the working directory."
        )
    return False


def _describe_file(f: Any) -> str:
    if isinstance(f, str | os.PathLike):
        return repr(os.fspath(f))
    name = getattr(f, "name", None)
    return f"<file object {name!r}>" if isinstance(name, str) else "<file object>"


def _weight_source(entry: ModelEntry, name_tag: str | None, pretrained: bool,
                   weights: Any) -> WeightTag | Path | str | Mapping | None:
    """Decide what to load: a registry tag, a local path, a URL, a state dict, or nothing."""
    if not isinstance(pretrained, bool):
        raise ArgumentTypeError(f"pretrained must be True or False, got {pretrained!r}; use weights= for a tag")
    given = [label for label, present in (("a tag in the name", name_tag is not None), ("pretrained=True", pretrained),
                                          ("weights=", weights is not None)) if present]
    if len(given) > 1:
        raise ArgumentError(
            f"hubkit.load({entry.name!r}): {' and '.join(given)} both choose weights; pass only one "
            f"(e.g. hubkit.load({entry.name!r}, weights='IMAGENET1K_V1'))."
        )
    if name_tag is not None:
        return _tag(entry, name_tag)
    if pretrained:
        if entry.default is None:
            raise ModelNotFoundError(
                f"{entry.name!r} has no published weights (architecture only), so pretrained=True cannot work; "
                f"load your own checkpoint with weights='path/to/checkpoint'."
            )
        return _tag(entry, entry.default)
    if weights is None:
        return None
    if isinstance(weights, Weights):
        if weights.model != entry.name:
            raise ArgumentError(f"weights {weights.name!r} belong to {weights.model!r}, not {entry.name!r}")
        return weights.entry
    if isinstance(weights, Mapping):
        return weights
    if isinstance(weights, os.PathLike):
        return Path(weights)
    if not isinstance(weights, str):
        raise ArgumentTypeError(
            f"weights must be a tag, a path, a URL, a Weights object or a state dict; got {type(weights).__name__}"
        )
    found = registry.resolve_tag(entry, weights)
    if found is not None and not weights.startswith(_URL_SCHEMES) and not Path(weights).is_file():
        return found
    if weights.startswith(_URL_SCHEMES):
        return weights
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if "/" in weights or os.sep in weights or path.suffix:
        raise ArgumentError(
            f"weights={weights!r} is neither a tag of {entry.name!r} nor an existing file "
            f"(looked for {path.resolve()}). Tags: {', '.join(entry.tags) or 'none'}."
        )
    return _tag(entry, weights)  # raises ModelNotFoundError with close matches


def _builder_kwargs(entry: ModelEntry, tag: WeightTag | None,
                    model_kwargs: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The builder's arguments for ``tag``, and the ``num_classes`` to reset the head to after loading (timm's
    ``pretrained=True, num_classes=10``), or ``None``."""
    kwargs = dict(model_kwargs)
    if tag is None:
        return kwargs, None
    required = dict(tag.model_kwargs)
    if tag.categories is not None:
        required["num_classes"] = tag.num_classes
    reset = None
    for key, value in required.items():
        if key == "num_classes" and key in kwargs and kwargs[key] != value:
            reset = kwargs[key]
        elif key in kwargs and kwargs[key] != value:
            raise ArgumentError(
                f"{entry.name}.{tag.tag} needs {key}={value!r}, got {key}={kwargs[key]!r}. Load the weights with "
                f"the default {key} and replace the layer afterwards (fine-tuning), or drop {key}=."
            )
        kwargs[key] = value
    return kwargs, reset


def _state_dict(source: WeightTag | Path | str | Mapping, progress: bool | None,
                key: str | Sequence[str] | None, *, whole: bool = False) -> Mapping[str, Any]:
    """The state dict behind a weight source. Files fetched into the cache are mapped (the cache replaces
    files only by renaming, so a mapping never sees them change); a user's file is read, since it may be
    rewritten in place while the model lives (see ``load_checkpoint``'s ``mmap``). ``whole``: the file's
    whole object instead, tensors as arrays (``ModelEntry.checkpoint_object``)."""
    from hubkit.hub import fetch
    from hubkit.hub.checkpoint.formats import load_checkpoint, load_object

    def read(path: Path, mmap: bool = False) -> Mapping[str, Any]:
        if whole:
            return load_object(path, mmap=mmap, tensor=lambda data: data.array)
        return load_checkpoint(path, key=key, mmap=mmap)

    if isinstance(source, Mapping):
        return source
    if isinstance(source, WeightTag):
        return read(fetch(source.resource, progress=progress), mmap=True)
    if isinstance(source, Path):
        return read(source)
    known = registry.find_by_file(source)
    prefix = None
    if known is not None:
        _, tag, alias = known
        if alias is None and source == tag.url:
            return read(fetch(tag.resource, progress=progress), mmap=True)
        prefix = alias.sha256_prefix if isinstance(alias, WeightAlias) and alias.url == source else None
    if prefix is None:
        logger.info("%s is not a registered file: it is cached with its sha256 recorded, but not verified", source)
    return read(fetch(source, sha256_prefix=prefix, progress=progress), mmap=True)


# ---------------------------------------------------------------- list_models and model_info


def list_models(
    pattern: str | Sequence[str] | ModuleType | None = None,
    *,
    module: str | ModuleType | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    modality: str | None = None,
    task: str | None = None,
    pretrained: bool | None = None,
) -> list[str]:
    """Registered model names, sorted naturally (``resnet18`` before ``resnet101``).

    Args:
        pattern: fnmatch pattern(s), case-insensitive (``"resnet*"``, ``["vgg*", "*net*"]``); a name
            matching any of them is kept. ``include`` is torchvision's name for it (give one of the two); a
            module given here is read as ``module=`` (torchvision's first argument).
        module: the zoo module the builders live in, as timm names it (``"resnet"``, ``"vision"``) or as
            torchvision passes it (the module object ``hubkit.zoo.vision``, or its dotted name).
        exclude: fnmatch pattern(s) of names to leave out (torchvision's and timm's ``exclude``).
        modality: ``"vision"``, ``"text"``, ``"audio"``.
        task: e.g. ``"image-classification"``.
        pretrained: ``True`` keeps models with published weights, ``False`` those without.
    """
    _ensure_zoo()
    if isinstance(pattern, ModuleType):
        pattern, module = None, module if module is not None else pattern
    if pattern is not None and include is not None:
        raise ArgumentError("list_models: pattern and include= are the same filter (include= is torchvision's name "
                            "for it); give one of them")
    patterns = _patterns(pattern if include is None else include)
    excluded = _patterns(exclude)
    out = []
    for entry in registry.entries():
        name = entry.name.lower()
        if patterns and not any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns):
            continue
        if any(fnmatch.fnmatchcase(name, p.lower()) for p in excluded):
            continue
        if module is not None and not _in_module(entry, module):
            continue
        if modality is not None and entry.modality != modality:
            continue
        if task is not None and entry.task != task:
            continue
        if pretrained is not None and bool(entry.weights) != pretrained:
            continue
        out.append(entry.name)
    return sorted(out, key=_natural_key)


def _patterns(given: str | Sequence[str] | None) -> list[str]:
    return [given] if isinstance(given, str) else list(given or [])


def _in_module(entry: ModelEntry, module: str | ModuleType) -> bool:
    """Whether ``entry``'s builder lives in ``module``: a module object or dotted name (a prefix of the builder's
    module path), or one component of that path (``"resnet"`` in ``hubkit.zoo.vision.resnet``)."""
    where = entry.builder.__module__
    name = module.__name__ if isinstance(module, ModuleType) else module
    if not isinstance(name, str) or not name:
        raise ArgumentTypeError(f"module must be a module or its name, got {module!r}")
    if "." in name or isinstance(module, ModuleType):
        return where == name or where.startswith(name + ".")
    return name in where.split(".")


def _tag_info(w: WeightTag) -> dict[str, Any]:
    from hubkit.hub.transport.cache import files_dir, read_record, url_relpath

    cached = files_dir().joinpath(*url_relpath(w.url).split("/"))
    record = read_record(cached) if cached.is_file() else None
    return {
        "tag": w.tag,
        "url": w.url,
        "sha256_prefix": w.sha256_prefix,
        "sha256": w.sha256 or (record.sha256 if record else None),
        "size": w.size,
        "file_size_mb": w.file_size_mb,
        "format": w.format,
        "license": w.license,
        "source": w.source,
        "recipe": w.recipe,
        "num_params": w.num_params,
        "gflops": w.gflops,
        "min_size": list(w.min_size),
        "metrics": w.clean_metrics(),
        "num_classes": w.num_classes if w.categories is not None else None,
        "preprocessing": w.preprocessing.as_dict(),
        "files": [{"name": f.name, "url": f.url, "sha256": f.sha256, "size": f.size} for f in w.files],
        "model_kwargs": dict(w.model_kwargs),
        "aliases": [{"url": a.url, "sha256_prefix": a.sha256_prefix, "note": a.note} for a in w.aliases],
        "mirrors": list(w.mirrors),
        "cached": str(cached) if record is not None else None,
    }


def model_info(name: str) -> dict[str, Any]:
    """Everything the registry knows about a model, as plain JSON-able data.

    Keys: ``name``, ``description``, ``modality``, ``task``, ``paper``, ``builder``, ``default``,
    ``legacy_default`` (torchvision's ``pretrained=True`` tag), ``num_params`` (of the DEFAULT tag, or
    ``None`` without weights), ``weights`` (one dict per tag — restricted to the named tag for
    ``"arch.tag"``: url, sha256 prefix, full sha256 once known, size, format, license, source, recipe,
    metrics, num_params, preprocessing, aliases, the cached path if downloaded).
    """
    entry, tag = split_name(name)
    tags = [_tag(entry, tag)] if tag is not None else list(entry.weights)
    default = next((w for w in entry.weights if w.tag == entry.default), None)
    return {
        "name": entry.name,
        "description": entry.description,
        "modality": entry.modality,
        "task": entry.task,
        "paper": entry.paper,
        "builder": f"{entry.builder.__module__}.{entry.builder.__qualname__}",
        "default": entry.default,
        "legacy_default": entry.legacy_default,
        "num_params": default.num_params if default else None,
        "weights": [_tag_info(w) for w in tags],
    }


def weight_resources(name: str) -> list[Any]:
    """The ``hubkit.hub.Resource`` rows behind a model name: ``"resnet50"`` = its DEFAULT file,
    ``"resnet50.IMAGENET1K_V1"`` = that file, ``"resnet50.*"`` = every tag's file (for ``mirror sync``
    and ``fetch-weights``)."""
    entry, tag = split_name(name)
    if tag == "*":
        tags = list(entry.weights)
    elif tag is not None:
        tags = [_tag(entry, tag)]
    elif entry.default is not None:
        tags = [_tag(entry, entry.default)]
    else:
        raise ModelNotFoundError(f"{entry.name!r} has no published weights (architecture only); nothing to fetch.")
    return [r for w in tags for r in (w.resource, *(f.resource for f in w.files))]


def is_model_name(name: str) -> bool:
    """Whether ``name`` (``arch`` or ``arch.tag``) names a registered architecture (the tag is not checked)."""
    _ensure_zoo()
    arch = name.strip().partition(".")[0]
    return registry.get_entry(arch) is not None or (
        arch.lower().endswith("_weights") and registry.get_entry(arch[: -len("_weights")]) is not None
    )


# ---------------------------------------------------------------- inference


def fuse_for_inference(model: Any) -> Any:
    """An inference-only copy of ``model`` with BatchNorm folded into the conv before it (same outputs).

    Uses the model's ``fusable_modules()`` plan where it has one (ResNet's custom ``forward``); runs inside
    ``Sequential`` containers are found automatically.
    """
    from hubkit.nn.fuse import fuse_for_inference as fuse

    plan = model.fusable_modules() if hasattr(model, "fusable_modules") else []
    return fuse(model, plan)
