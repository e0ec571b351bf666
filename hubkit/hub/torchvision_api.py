"""torchvision's model functions over hubkit's registry: ``get_model``, ``get_model_weights``, ``get_weight``.

    import hubkit
    model = hubkit.get_model("resnet50", weights="DEFAULT")        # torchvision.models.get_model
    enum = hubkit.get_model_weights("resnet50")                   # what ResNet50_Weights is to torchvision
    enum.IMAGENET1K_V2, enum.DEFAULT, enum["IMAGENET1K_V1"], list(enum)
    hubkit.get_weight("ResNet50_Weights.IMAGENET1K_V2")           # one member, by torchvision's spelling

The members are :class:`~hubkit.hub.api.Weights` (``url``, ``meta``, ``transforms()``, ``get_state_dict()``), and
anything torchvision accepts as ``weights=`` (a member, ``"DEFAULT"``, ``"IMAGENET1K_V1"``) ``get_model`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from hubkit.errors import ArgumentError, ArgumentTypeError, ModelNotFoundError
from hubkit.hub import registry
from hubkit.hub.api import Weights, _ensure_zoo, _load_model, get_weights, split_name
from hubkit.hub.registry import ModelEntry

__all__ = ["ModelWeights", "get_model", "get_model_weights", "get_weight"]


class ModelWeights:
    """The weight tags of one architecture, shown as torchvision shows a ``Weights`` enum class.

    Members are attributes and items (``w.IMAGENET1K_V2``, ``w["IMAGENET1K_V1"]``, ``w.DEFAULT``), iteration and
    ``len`` cover the tags (not the ``DEFAULT`` alias), and ``verify`` turns a tag name into its member.
    """

    def __init__(self, entry: ModelEntry) -> None:
        self._entry = entry

    @property
    def model(self) -> str:
        """The architecture's registered name."""
        return self._entry.name

    def _member(self, tag: str) -> Weights | None:
        if tag == "DEFAULT" and self._entry.default is not None:
            tag = self._entry.default
        if tag not in self._entry.tags:
            return None
        return Weights(self._entry.name, self._entry.weight(tag))

    def _missing(self, tag: str) -> str:
        known = ", ".join(self._entry.tags) or "none (architecture only)"
        return f"{self._entry.name!r} has no weight tag {tag!r}; its tags: {known}"

    def __getattr__(self, tag: str) -> Weights:
        if tag.startswith("_"):
            raise AttributeError(tag)
        member = self._member(tag)
        if member is None:
            raise AttributeError(self._missing(tag))
        return member

    def __getitem__(self, tag: str) -> Weights:
        member = self._member(tag) if isinstance(tag, str) else None
        if member is None:
            raise ModelNotFoundError(self._missing(tag))
        return member

    def __iter__(self) -> Iterator[Weights]:
        return (Weights(self._entry.name, w) for w in self._entry.weights)

    def __len__(self) -> int:
        return len(self._entry.weights)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, Weights) and item.model == self._entry.name and item.tag in self._entry.tags

    def verify(self, obj: Any) -> Weights | None:
        """torchvision's ``Weights.verify``: ``None`` stays ``None``; a member of this enum, a tag name
        (``"IMAGENET1K_V1"``, ``"DEFAULT"``) or ``"Enum_Weights.TAG"`` gives the member."""
        if obj is None:
            return None
        if isinstance(obj, Weights):
            if obj not in self:
                raise ArgumentError(f"{obj!r} are not weights of {self._entry.name!r}")
            return obj
        if not isinstance(obj, str):
            raise ArgumentTypeError(f"expected a tag name or Weights of {self._entry.name!r}, got {obj!r}")
        return Weights(self._entry.name, self._entry.weight(obj))

    def __repr__(self) -> str:
        default = f"; DEFAULT={self._entry.default}" if self._entry.default else ""
        return f"<weights of {self._entry.name!r}: {', '.join(self._entry.tags) or 'none'}{default}>"


def get_model(name: str, **config: Any) -> Any:
    """torchvision's ``get_model``: build the registered model ``name`` with ``config``.

    ``config`` is :func:`hubkit.load`'s model arguments: ``weights=`` (a tag, ``"DEFAULT"``, a member of
    :func:`get_model_weights`, a path), ``num_classes=``, ``device=``, builder arguments. Unlike ``hubkit.load``,
    ``name`` is never read as a file.
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"get_model expects a model name like 'resnet50', got {type(name).__name__}")
    return _load_model(name, pretrained=config.pop("pretrained", False), weights=config.pop("weights", None),
                       device=config.pop("device", None), progress=config.pop("progress", None),
                       strict=config.pop("strict", True), key=config.pop("key", None),
                       features_only=config.pop("features_only", False), out_indices=config.pop("out_indices", None),
                       model_kwargs=config)  # fmt: skip


def get_model_weights(name: str | Callable[..., Any]) -> ModelWeights:
    """torchvision's ``get_model_weights``: the weight tags of the architecture ``name`` (``"resnet50"``,
    ``"ResNet50_Weights"``, or its builder function)."""
    if callable(name):
        _ensure_zoo()
        for entry in registry.entries():
            if entry.builder is name:
                return ModelWeights(entry)
        raise ModelNotFoundError(f"{getattr(name, '__name__', name)!r} is not the builder of a registered model")
    entry, tag = split_name(name)
    if tag is not None:
        raise ArgumentError(f"get_model_weights({name!r}) takes an architecture; for one tag use "
                            f"get_weight({name!r})")
    return ModelWeights(entry)


def get_weight(name: str) -> Weights:
    """torchvision's ``get_weight``: the weights called ``"Enum_Weights.TAG"`` (``"ResNet50_Weights.IMAGENET1K_V2"``);
    hubkit's ``"resnet50.IMAGENET1K_V2"`` is read too."""
    if not isinstance(name, str) or "." not in name:
        raise ArgumentError(f"get_weight expects 'ResNet50_Weights.IMAGENET1K_V2' (enum.tag), got {name!r}; an "
                            "architecture's default weights are get_weights('resnet50')")
    return get_weights(name)
