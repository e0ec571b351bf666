"""timm's model interface for the vision zoo: a resettable classifier, the trunk's features, stage feature maps.

Every classifier in ``hubkit.zoo.vision`` mixes in :class:`Backbone`, so code written against timm models runs::

    model = hubkit.load("resnet50", pretrained=True, num_classes=10)  # pretrained trunk, fresh 10-way head
    fmap = model.forward_features(x)            # (N, 2048, H/32, W/32): the trunk, before pooling
    model.forward_head(fmap, pre_logits=True)   # (N, 2048): what the last layer sees
    model.reset_classifier(5)                   # a freshly initialised 5-way last layer (0: none)
    feats = hubkit.load("resnet50", features_only=True, out_indices=(1, 2, 3, 4))
    feats(x)                                    # [(N, 256, H/4, W/4), ..., (N, 2048, H/32, W/32)]
    feats.feature_info.channels(), feats.feature_info.reduction()   # [256, 512, 1024, 2048], [4, 8, 16, 32]

A model describes its trunk as consecutive stages (``_stages``): applying them in order to the input gives the
feature map of each stage, ``feature_info`` says their channels, reductions (input size / map size) and where
each stage ends, and ``forward_features`` is the stages followed by the model's ``_features_tail`` (a last pool
or 1x1 conv that belongs to the trunk but to no stage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from hubkit import nn
from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.tensor import Tensor

__all__ = ["Backbone", "FeatureInfo", "FeatureListNet", "feature_take_indices", "run_modules",
           "sequential_stages", "stages_by_stride"]

Stage = Callable[[Tensor], Tensor]


class FeatureInfo:
    """The stages of a trunk (timm's ``FeatureInfo``): one dict per stage with ``num_chs`` (channels),
    ``reduction`` (how many input pixels one map pixel spans) and ``module`` (where the stage ends).

    Indexing, ``len`` and iteration cover every stage; ``channels()``, ``reduction()`` and ``module_name()``
    list the stages in ``out_indices`` (all of them on a full model), or one stage with ``idx``.
    """

    def __init__(self, stages: Sequence[dict[str, Any]], out_indices: Sequence[int] | None = None) -> None:
        self.info = [dict(s) for s in stages]
        self.out_indices = tuple(range(len(self.info))) if out_indices is None else tuple(out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, Sequence):
            return [self.info[i][key] for i in idx]
        return self.info[idx][key]

    def get_dicts(self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None) -> Any:
        def pick(i: int) -> dict[str, Any]:
            return dict(self.info[i]) if keys is None else {k: self.info[i][k] for k in keys}

        if idx is None:
            return [pick(i) for i in self.out_indices]
        return [pick(i) for i in idx] if isinstance(idx, Sequence) else pick(idx)

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("module", idx)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.info)

    def __repr__(self) -> str:
        return f"FeatureInfo(channels={self.channels()}, reduction={self.reduction()}, out_indices={self.out_indices})"


def feature_take_indices(num_stages: int, indices: int | Iterable[int] | None) -> tuple[int, ...]:
    """Which stages to return, as timm reads ``out_indices``: ``None`` = all, an int ``n`` = the last ``n``,
    a sequence = those stages (negative counts from the end), returned in stage order."""
    if indices is None:
        return tuple(range(num_stages))
    if isinstance(indices, bool) or not isinstance(indices, int | Iterable):
        raise ArgumentTypeError(f"out_indices must be an int or a sequence of ints, got {indices!r}")
    if isinstance(indices, int):
        if not 1 <= indices <= num_stages:
            raise ArgumentError(f"out_indices={indices} asks for the last {indices} stages; the model has "
                                f"{num_stages} (indices 0..{num_stages - 1})")
        return tuple(range(num_stages - indices, num_stages))
    wanted = list(indices)
    if not wanted or any(isinstance(i, bool) or not isinstance(i, int) for i in wanted):
        raise ArgumentTypeError(f"out_indices must hold stage numbers (ints), got {indices!r}")
    bad = [i for i in wanted if not -num_stages <= i < num_stages]
    if bad:
        raise ArgumentError(f"out_indices {bad} out of range: the model has {num_stages} stages "
                            f"(indices 0..{num_stages - 1}, or -{num_stages}..-1)")
    resolved = sorted(i % num_stages for i in wanted)
    if len(set(resolved)) != len(resolved):
        raise ArgumentError(f"out_indices {list(indices)} name a stage twice")
    return tuple(resolved)


def run_modules(modules: Iterable[nn.Module]) -> Stage:
    """One stage made of consecutive modules (a slice of a Sequential whose class may not support slicing)."""
    chain = list(modules)

    def stage(x: Tensor) -> Tensor:
        for m in chain:
            x = m(x)
        return x

    return stage


def sequential_stages(features: nn.Sequential, rows: Sequence[tuple[int, int, int, int]],
                      prefix: str = "features") -> tuple[list[tuple[int, int]], FeatureInfo]:
    """Stages that are slices of the Sequential ``features`` (the attribute ``prefix``): rows of ``(start, end,
    channels, reduction)``, the stage being blocks ``start .. end - 1``. Returns the ``_stage_ranges`` and
    ``feature_info`` of :class:`Backbone`."""
    names = [name for name, _ in features.named_children()]
    ranges = [(a, b) for a, b, _, _ in rows]
    info = [{"num_chs": c, "reduction": r, "module": f"{prefix}.{names[b - 1]}"} for _, b, c, r in rows]
    return ranges, FeatureInfo(info)


def stages_by_stride(strides: Sequence[int], channels: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Cut a run of blocks into stages, each ending just before a block that shrinks the map: block ``i`` has
    stride ``strides[i]`` and ``channels[i]`` output channels. Returns :func:`sequential_stages`' rows."""
    rows = []
    start, reduction = 0, 1
    for i, stride in enumerate(strides):
        reduction *= stride
        if i == len(strides) - 1 or strides[i + 1] > 1:
            rows.append((start, i + 1, channels[i], reduction))
            start = i + 1
    return rows


class Backbone:
    """timm's classifier interface, mixed into the vision zoo's ``nn.Module`` classes (``class ResNet(Backbone,
    nn.Module)``).

    A model sets ``num_classes``, ``num_features`` (channels of ``forward_features``' output), ``head_hidden_size``
    (width of what the last layer sees) and ``feature_info`` in ``__init__``, sets the class attributes below, and
    defines ``forward_head(x, pre_logits=False)``: ``forward_features``' output -> logits, or with ``pre_logits``
    the ``(N, head_hidden_size)`` input of the last layer.
    """

    first_conv: str = ""  # the first conv's module path (timm's pretrained_cfg["first_conv"])
    classifier_name: str = ""  # the last layer's module path, replaced by reset_classifier
    head_modules: tuple[str, ...] = ()  # top-level modules only the head uses, dropped by FeatureListNet
    default_input_size: tuple[int, int, int] = (3, 224, 224)
    fixed_input_size: bool = False  # True where the input size is part of the weights (ViT's position embedding)
    num_classes: int
    num_features: int
    head_hidden_size: int
    feature_info: FeatureInfo
    pretrained_cfg: dict[str, Any]

    # Models whose trunk is the Sequential ``features`` list each stage's block range here; the blocks after the
    # last stage are the trunk's tail. Other models override _stages (and _features_tail where they have one).
    _stage_ranges: list[tuple[int, int]] = []

    def _stages(self) -> list[Stage]:
        blocks = list(self.features)
        return [run_modules(blocks[a:b]) for a, b in self._stage_ranges]

    def _features_tail(self, x: Tensor) -> Tensor:
        if not self._stage_ranges:
            return x
        for block in list(self.features)[self._stage_ranges[-1][1]:]:
            x = block(x)
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        """The trunk: ``(N, C, H, W) -> (N, num_features, H', W')``, before global pooling."""
        for stage in self._stages():
            x = stage(x)
        return self._features_tail(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: Tensor, indices: int | Iterable[int] | None = None) -> list[Tensor]:
        """The feature maps of the stages in ``indices`` (see :func:`feature_take_indices`), in stage order;
        stages after the last one asked for are not run."""
        take = feature_take_indices(len(self.feature_info), indices)
        out = []
        for i, stage in enumerate(self._stages()[: take[-1] + 1]):
            x = stage(x)
            if i in take:
                out.append(x)
        return out

    def get_classifier(self) -> nn.Module:
        """The last layer (``nn.Identity`` after ``reset_classifier(0)``)."""
        return self.get_submodule(self.classifier_name)

    def _new_classifier(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.head_hidden_size, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer by a freshly initialised one with ``num_classes`` outputs, on the model's device
        and dtype; ``0`` removes it, so ``forward`` returns the pre-logits features ``(N, head_hidden_size)``."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ArgumentError(f"num_classes must be an int >= 0 (0 removes the classifier), got {num_classes!r}")
        parent_name, _, leaf = self.classifier_name.rpartition(".")
        parent = self.get_submodule(parent_name) if parent_name else self
        layer = self._new_classifier(num_classes) if num_classes else nn.Identity()
        like = next(iter(self.parameters()), None)
        if like is not None and num_classes:
            layer.to(like)
        setattr(parent, leaf, layer)
        self.num_classes = num_classes

    def set_pretrained_cfg(self, architecture: str, tag: Any) -> None:
        """Set ``pretrained_cfg`` (timm's dict) from the weight tag ``tag`` of ``architecture`` (``None``: an
        architecture without published weights)."""
        self.pretrained_cfg = _pretrained_cfg(self, architecture, tag)

    @property
    def default_cfg(self) -> dict[str, Any]:
        """timm's older name of ``pretrained_cfg``."""
        return self.pretrained_cfg


def _pretrained_cfg(model: Backbone, architecture: str, tag: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "architecture": architecture, "tag": None, "url": None, "num_classes": model.num_classes,
        "input_size": model.default_input_size, "min_input_size": None, "fixed_input_size": model.fixed_input_size,
        "interpolation": None, "crop_pct": None, "crop_mode": None, "mean": None, "std": None,
        "first_conv": model.first_conv, "classifier": model.classifier_name, "license": None,
    }  # fmt: skip
    if tag is None:
        return cfg
    p = tag.preprocessing
    channels = model.default_input_size[0]
    cfg.update({
        "tag": tag.tag, "url": tag.url, "license": tag.license,
        "num_classes": tag.num_classes if tag.categories is not None else model.num_classes,
        "input_size": (channels, p.crop_size, p.crop_size), "min_input_size": (channels, *tag.min_size),
        "interpolation": p.interpolation,
        "crop_pct": round(p.crop_size / p.resize_size, 4), "crop_mode": "center", "mean": tuple(p.mean),
        "std": tuple(p.std),
    })  # fmt: skip
    return cfg


class FeatureListNet(nn.Module):
    """A model's trunk returning the feature maps of the stages in ``out_indices`` (timm's ``features_only``).

    ``forward``: ``(N, C, H, W)`` -> a list with one ``(N, feature_info.channels()[k], H / r_k, W / r_k)`` map per
    chosen stage (``r_k = feature_info.reduction()[k]``). The trunk's modules keep their names, so state-dict
    keys are the model's without its head. The model given is consumed: its head modules are removed.
    """

    def __init__(self, model: Backbone, out_indices: int | Iterable[int] | None = None) -> None:
        super().__init__()
        if not isinstance(model, Backbone):
            raise ArgumentTypeError(f"FeatureListNet needs a vision-zoo model (a Backbone), got {type(model).__name__}")
        take = feature_take_indices(len(model.feature_info), out_indices)
        for name in model.head_modules:
            delattr(model, name)
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buf in model.named_buffers(recurse=False):
            self.register_buffer(name, buf)
        self.out_indices = take
        self.feature_info = FeatureInfo(model.feature_info.info, take)
        self.pretrained_cfg = getattr(model, "pretrained_cfg", None)
        self.__dict__["_model"] = model  # not a submodule: its trunk is registered above under the same names

    def forward(self, x: Tensor) -> list[Tensor]:
        return self._model.forward_intermediates(x, self.out_indices)

    def train(self, mode: bool = True) -> FeatureListNet:
        super().train(mode)
        self._model.training = mode
        return self
