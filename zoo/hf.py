"""Models from Hugging Face folders and repos: what ``hubkit.load(FOLDER)`` and ``hubkit.load("hf:ORG/NAME")`` build.

    model = hubkit.load("hf:sentence-transformers/all-MiniLM-L6-v2")    # SentenceEncoder, tokenizer attached
    model = hubkit.load("~/models/my-bert/")                            # a local transformers folder

A folder in the transformers layout (``config.json``; ``model.safetensors`` or ``pytorch_model.bin``, or their
sharded ``*.index.json`` form; tokenizer files) or the sentence-transformers layout (also ``modules.json``,
``1_Pooling/config.json``, ``2_Normalize``, ``sentence_bert_config.json``, ``config_sentence_transformers.json``)
becomes the hubkit model of its family, chosen by ``config.json``'s ``model_type`` (else its ``architectures``):

===============  ========================================================================================
model_type       hubkit model
===============  ========================================================================================
``bert``         a sentence-transformers pipeline -> :class:`~hubkit.zoo.text.bert.SentenceEncoder` (its Pooling
                 modes, Normalize, max_seq_length, prompts, similarity function); ``BertForMaskedLM`` /
                 ``BertForPreTraining`` -> ``BertForMaskedLM`` (``fill_mask``); others -> ``BertModel``
``distilbert``   ``DistilBertForMaskedLM`` -> ``DistilBertForMaskedLM``; others -> ``DistilBertModel``
``roberta``      ``RobertaForMaskedLM`` -> ``RobertaForMaskedLM``; others -> ``RobertaModel``
``gpt2``         ``GPT2LMHeadModel`` (``generate``, ``perplexity``; a ``GPT2Model`` file's head is its tied
                 embedding)
``wav2vec2``     ``Wav2Vec2ForCTC`` -> ``Wav2Vec2Model`` with its CTC head and ``vocab.json`` labels (``transcribe``);
                 others -> the feature encoder. Base layout only (group-norm extractor, post-LN layers).
===============  ========================================================================================

Task heads hubkit does not implement (``classifier``, ``qa_outputs``, ``score``, ...) are left out with a warning: the
model is the encoder those heads sat on. Weights load strictly otherwise, and the model comes back in ``eval()`` mode.
Text models get their tokenizer (``tokenizer.json``, else ``vocab.txt`` or ``vocab.json`` + ``merges.txt``) and
``max_seq_length`` (sentence-transformers' setting, else the tokenizer's limit within the model's positions), so
``model.tokenize(texts)`` returns what sentence-transformers' ``tokenize`` returns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hubkit.errors import ArgumentError, CheckpointError
from hubkit.hub.transport.cache import check_relative_name

__all__ = ["SUPPORTED_FAMILIES", "FolderFiles", "ModelFiles", "family_of", "load_pretrained"]

logger = logging.getLogger("hubkit.zoo.hf")

# architectures' class-name prefix -> model_type, for configs without model_type
_ARCH_PREFIXES = (("DistilBert", "distilbert"), ("Roberta", "roberta"), ("Bert", "bert"), ("GPT2", "gpt2"),
                  ("Wav2Vec2", "wav2vec2"))


class ModelFiles(Protocol):
    """Where a model's files are: ``has(name)`` without fetching anything, ``get(name)`` -> a local path (fetched
    and verified for a repo) or ``None`` when there is no such file; ``where`` names the place in messages;
    ``mappable``: files are only ever replaced by renaming, so checkpoints may be memory-mapped."""

    where: str
    mappable: bool

    def has(self, name: str) -> bool: ...

    def get(self, name: str) -> Path | None: ...


class FolderFiles:
    """The files of a local folder (a transformers ``save_pretrained`` or sentence-transformers ``save`` folder, or a
    Hugging Face cache snapshot)."""

    mappable = False  # a user's folder may be rewritten in place while the model lives

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self.where = str(self.folder)

    def _path(self, name: str) -> Path:
        return self.folder.joinpath(*check_relative_name(name, what="file name", error=CheckpointError))

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def get(self, name: str) -> Path | None:
        path = self._path(name)
        return path if path.is_file() else None


class _Sub:
    """The files under ``prefix/`` of other files (a sentence-transformers Transformer module kept in a subfolder)."""

    def __init__(self, files: ModelFiles, prefix: str) -> None:
        self.files, self.prefix = files, prefix.strip("/")
        self.where = f"{files.where}/{self.prefix}" if self.prefix else files.where
        self.mappable = files.mappable

    def _name(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def has(self, name: str) -> bool:
        return self.files.has(self._name(name))

    def get(self, name: str) -> Path | None:
        return self.files.get(self._name(name))


def _read_json(files: ModelFiles, name: str, *, required: bool = False) -> Any:
    path = files.get(name) if files.has(name) else None
    if path is None:
        if required:
            raise CheckpointError(f"{files.where} has no {name}; expected a Hugging Face model folder (transformers "
                                  "save_pretrained or sentence-transformers layout) with its config.json")  # fmt: skip
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {name} of {files.where} as JSON: {e}") from None


# ---------------------------------------------------------------- families


def family_of(config: Mapping[str, Any], where: str = "the model") -> str:
    """The hubkit family of a ``config.json``: its ``model_type`` when hubkit implements it, else the family its
    ``architectures`` name; raises :class:`ArgumentError` listing the supported families otherwise."""
    model_type = config.get("model_type")
    if model_type in SUPPORTED_FAMILIES:
        return model_type
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    if model_type is None:
        for arch in archs:
            for prefix, family in _ARCH_PREFIXES:
                if arch.startswith(prefix):
                    return family
    found = f"model_type {model_type!r}" if model_type is not None else (
        f"architectures {archs}" if archs else "no model_type and no architectures")  # fmt: skip
    raise ArgumentError(
        f"{where} is a model hubkit does not implement ({found} in its config.json). hubkit loads these families from "
        f"Hugging Face folders and repos: {', '.join(SUPPORTED_FAMILIES)} (model_type in config.json)."
    )


def _architecture(config: Mapping[str, Any]) -> str:
    archs = config.get("architectures") or []
    return archs[0] if archs and isinstance(archs[0], str) else ""


def _read_state(files: ModelFiles) -> dict[str, Any]:
    """The checkpoint tensors of a folder: ``model.safetensors``, ``pytorch_model.bin``, or the shards an index
    names."""
    from hubkit.hub.checkpoint.formats import load_checkpoint

    for name in ("model.safetensors", "pytorch_model.bin"):
        if files.has(name):
            return dict(load_checkpoint(files.get(name), mmap=files.mappable))
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if not files.has(index):
            continue
        data = _read_json(files, index)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise CheckpointError(f"{index} of {files.where} has no weight_map of tensor -> shard file")
        state: dict[str, Any] = {}
        for shard in sorted(set(weight_map.values())):
            if not files.has(shard):
                raise CheckpointError(f"{files.where}: {index} names the shard {shard}, which is missing")
            state.update(load_checkpoint(files.get(shard), mmap=files.mappable))
        return state
    others = [n for n in ("tf_model.h5", "flax_model.msgpack", "model.onnx", "onnx/model.onnx", "rust_model.ot")
              if files.has(n)]  # fmt: skip
    hint = f"; it has only {', '.join(others)}, which hubkit does not read" if others else ""
    raise CheckpointError(f"{files.where} has no weights: expected model.safetensors or pytorch_model.bin (or their "
                          f"sharded .index.json form){hint}")  # fmt: skip


def _drop(state: dict[str, Any], prefixes: tuple[str, ...], what: str, where: str) -> dict[str, Any]:
    dropped = sorted({k.split(".")[0] for k in state if k.startswith(prefixes)})
    if dropped:
        logger.warning("%s: %s has task heads hubkit does not implement (%s); loading the encoder without them",
                       where, what, ", ".join(dropped))
    return {k: v for k, v in state.items() if not k.startswith(prefixes)}


def _strip(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    return state


def _positions_limit(model: Any) -> int | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    if hasattr(config, "n_positions"):
        return config.n_positions
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and type(config).__name__ == "RobertaConfig":
        return positions - config.pad_token_id - 1
    return positions


def _attach_tokenizer(model: Any, files: ModelFiles, max_seq_length: int | None = None) -> None:
    from hubkit.zoo.text.tokenizer_json import load_tokenizer_from

    if not any(files.has(n) for n in ("tokenizer.json", "vocab.txt", "vocab.json")):
        logger.warning("%s has no tokenizer files; set model.tokenizer before giving the model text", files.where)
        model.tokenizer = None
        limit = _positions_limit(model)
    else:
        model.tokenizer = load_tokenizer_from(files.get, files.where)
        limit = getattr(model.tokenizer, "model_max_length", None)
        positions = _positions_limit(model)
        if positions is not None:
            limit = positions if limit is None else min(limit, positions)
    model.max_seq_length = max_seq_length if max_seq_length is not None else limit


# ---------------------------------------------------------------- sentence-transformers pipelines


@dataclass
class SentencePipeline:
    """A sentence-transformers folder's ``modules.json`` read: Transformer -> Pooling -> optional Normalize."""

    transformer: str = ""
    pooling: tuple[str, ...] = ("mean",)
    include_prompt: bool = True
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    similarity_fn_name: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


_LEGACY_POOLING = (("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"),
                   ("pooling_mode_mean_tokens", "mean"), ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                   ("pooling_mode_weightedmean_tokens", "weightedmean"), ("pooling_mode_lasttoken", "lasttoken"))


def _pooling_modes(config: Mapping[str, Any], where: str) -> tuple[str, ...]:
    from hubkit.zoo.text.bert import POOLING_MODES

    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(m for key, m in _LEGACY_POOLING if config.get(key))
        modes = modes or ("mean",)
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    bad = [m for m in modes if m not in POOLING_MODES]
    if bad or not modes:
        raise CheckpointError(f"{where}: pooling modes {bad or modes} are not sentence-transformers' "
                              f"{list(POOLING_MODES)}")  # fmt: skip
    return modes


def sentence_pipeline(files: ModelFiles) -> SentencePipeline | None:
    """The sentence-transformers pipeline of a folder (its ``modules.json``), or ``None`` for a plain transformers
    folder. Pipelines other than Transformer -> Pooling [-> Normalize] raise :class:`ArgumentError`."""
    modules = _read_json(files, "modules.json")
    if modules is None:
        return None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise CheckpointError(f"modules.json of {files.where} is not a list of modules")
    modules = sorted(modules, key=lambda m: m.get("idx", 0))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    supported = ["Transformer", "Pooling", "Normalize"]
    if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds or any(k not in supported for k in kinds) or \
            kinds.index("Pooling") != 1 or (len(kinds) == 3 and kinds[2] != "Normalize") or len(kinds) > 3:  # fmt: skip
        raise ArgumentError(
            f"{files.where} is a sentence-transformers model whose pipeline is {' -> '.join(kinds) or '(empty)'}; "
            f"hubkit runs Transformer -> Pooling [-> Normalize] pipelines (modules such as Dense or LayerNorm are "
            "not implemented)."
        )
    pipeline = SentencePipeline(transformer=str(modules[0].get("path") or ""), normalize="Normalize" in kinds)
    pooling_path = str(modules[1].get("path") or "")
    pooling = _read_json(files, f"{pooling_path}/config.json" if pooling_path else "config.json", required=True)
    if not isinstance(pooling, dict):
        raise CheckpointError(f"{files.where}: the Pooling module's config.json is not an object")
    pipeline.pooling = _pooling_modes(pooling, files.where)
    pipeline.include_prompt = bool(pooling.get("include_prompt", True))
    transformer = _Sub(files, pipeline.transformer)
    settings = _read_json(transformer, "sentence_bert_config.json") or {}
    if isinstance(settings, dict):
        if isinstance(settings.get("max_seq_length"), int):
            pipeline.max_seq_length = settings["max_seq_length"]
        pipeline.do_lower_case = bool(settings.get("do_lower_case", False))
    st_config = _read_json(files, "config_sentence_transformers.json") or {}
    if isinstance(st_config, dict):
        if isinstance(st_config.get("similarity_fn_name"), str):
            pipeline.similarity_fn_name = st_config["similarity_fn_name"]
        prompts = st_config.get("prompts")
        if isinstance(prompts, dict):
            pipeline.prompts = {k: v for k, v in prompts.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(st_config.get("default_prompt_name"), str):
            pipeline.default_prompt_name = st_config["default_prompt_name"]
    return pipeline


# ---------------------------------------------------------------- per family


def _bert(config: dict[str, Any], files: ModelFiles, pipeline: SentencePipeline | None) -> Any:
    from hubkit.zoo.text.bert import (
        BertConfig,
        BertForMaskedLM,
        BertModel,
        SentenceEncoder,
        _hf_bert_state,
        hf_bert_mlm_state,  # fmt: skip
    )

    state = _read_state(files)
    cfg = BertConfig.from_dict(config)
    arch = _architecture(config)
    if pipeline is not None:
        has_pooler = any(k.startswith(("pooler.", "bert.pooler.")) for k in state)
        model = SentenceEncoder(cfg, normalize=pipeline.normalize, max_seq_length=pipeline.max_seq_length,
                                pooling=pipeline.pooling, add_pooling_layer=has_pooler)  # fmt: skip
        model.load_state_dict(_hf_bert_state(_drop(state, ("cls.", "classifier.", "qa_outputs."), arch, files.where),
                                             has_pooler=has_pooler), strict=True)  # fmt: skip
        model.similarity_fn_name = pipeline.similarity_fn_name
        model.prompts, model.default_prompt_name = dict(pipeline.prompts), pipeline.default_prompt_name
        model.include_prompt, model.do_lower_case = pipeline.include_prompt, pipeline.do_lower_case
        _attach_tokenizer(model, files, pipeline.max_seq_length)
        return model
    if arch in ("BertForMaskedLM", "BertForPreTraining") or (not arch and any(k.startswith("cls.predictions.")
                                                                             for k in state)):  # fmt: skip
        model = BertForMaskedLM(cfg)
        model.load_state_dict(hf_bert_mlm_state(state), strict=True)
    else:
        inner = _strip(state, "bert.")
        inner = _drop(inner, ("cls.", "classifier.", "qa_outputs."), arch or "the checkpoint", files.where)
        has_pooler = any(k.startswith("pooler.") for k in inner)
        model = BertModel(cfg, add_pooling_layer=has_pooler)
        model.load_state_dict(_hf_bert_state(inner, has_pooler=has_pooler), strict=True)
    _attach_tokenizer(model, files)
    return model


def _distilbert(config: dict[str, Any], files: ModelFiles, pipeline: SentencePipeline | None) -> Any:
    from hubkit.zoo.text.distilbert import (
        DistilBertConfig,
        DistilBertForMaskedLM,
        DistilBertModel,
        hf_distilbert_mlm_state,  # fmt: skip
    )

    state = _read_state(files)
    cfg = DistilBertConfig.from_dict(config)
    arch = _architecture(config)
    if arch == "DistilBertForMaskedLM" or (not arch and "vocab_projector.bias" in state):
        model = DistilBertForMaskedLM(cfg)
        model.load_state_dict(hf_distilbert_mlm_state(state), strict=True)
    else:
        inner = _strip(state, "distilbert.")
        inner = _drop(inner, ("vocab_", "pre_classifier.", "classifier.", "qa_outputs."), arch or "the checkpoint",
                      files.where)  # fmt: skip
        inner = {k: v for k, v in inner.items() if not k.endswith("embeddings.position_ids")}
        model = DistilBertModel(cfg)
        model.load_state_dict(inner, strict=True)
    _attach_tokenizer(model, files)
    settings = _read_json(files, "tokenizer_config.json") or {}
    if model.tokenizer is not None and "model_input_names" not in settings:
        # DistilBERT has no token types: transformers' DistilBERT tokenizer does not return them
        model.tokenizer.model_input_names = ["input_ids", "attention_mask"]
    return model


def _roberta(config: dict[str, Any], files: ModelFiles, pipeline: SentencePipeline | None) -> Any:
    from hubkit.zoo.text.roberta import RobertaConfig, RobertaForMaskedLM, RobertaModel, hf_roberta_mlm_state

    state = _read_state(files)
    cfg = RobertaConfig.from_dict(config)
    arch = _architecture(config)
    if arch == "RobertaForMaskedLM" or (not arch and "lm_head.dense.weight" in state):
        model = RobertaForMaskedLM(cfg)
        model.load_state_dict(hf_roberta_mlm_state(state), strict=True)
    else:
        inner = _strip(state, "roberta.")
        inner = _drop(inner, ("lm_head.", "classifier.", "qa_outputs."), arch or "the checkpoint", files.where)
        inner = {k: v for k, v in inner.items() if not k.endswith("embeddings.position_ids")}
        has_pooler = any(k.startswith("pooler.") for k in inner)
        model = RobertaModel(cfg, add_pooling_layer=has_pooler)
        model.load_state_dict(inner, strict=True)
    _attach_tokenizer(model, files)
    return model


def _gpt2(config: dict[str, Any], files: ModelFiles, pipeline: SentencePipeline | None) -> Any:
    from hubkit.zoo.text.gpt2 import GPT2Config, GPT2LMHeadModel, hf_gpt2_state

    state = hf_gpt2_state(_read_state(files))
    state = _drop(state, tuple(sorted({k.split(".")[0] + "." for k in state} - {"transformer.", "lm_head."})),
                  _architecture(config) or "the checkpoint", files.where)  # fmt: skip
    model = GPT2LMHeadModel(GPT2Config.from_dict(config))
    model.load_state_dict(state, strict=True)
    _attach_tokenizer(model, files)
    return model


def _ctc_labels(files: ModelFiles, size: int) -> list[str] | None:
    vocab = _read_json(files, "vocab.json")
    if vocab is None:
        logger.warning("%s has no vocab.json: transcribe() needs the CTC labels; forward() gives emissions",
                       files.where)
        return None
    if not isinstance(vocab, dict) or sorted(vocab.values()) != list(range(len(vocab))):
        raise CheckpointError(f"vocab.json of {files.where} is not a token -> id table numbering 0..{len(vocab) - 1}")
    if len(vocab) != size:
        raise CheckpointError(f"{files.where}: vocab.json has {len(vocab)} tokens, the CTC head {size} outputs")
    settings = _read_json(files, "tokenizer_config.json") or {}
    delimiter = settings.get("word_delimiter_token", "|") if isinstance(settings, dict) else "|"
    labels = [""] * len(vocab)
    for token, index in vocab.items():
        labels[index] = "|" if token == delimiter else token
    return labels


def _wav2vec2(config: dict[str, Any], files: ModelFiles, pipeline: SentencePipeline | None) -> Any:
    from hubkit.zoo.audio.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model, hf_wav2vec2_state

    arch = _architecture(config)
    state = _read_state(files)
    state = {k: v for k, v in state.items() if not k.startswith(("quantizer.", "project_q.", "project_hid."))}
    ctc = arch == "Wav2Vec2ForCTC" or (not arch and "lm_head.weight" in state)
    heads = ("projector.", "classifier.", "feature_extractor_head.") + (() if ctc else ("lm_head.",))
    state = _drop(state, heads, arch or "the checkpoint", files.where)
    cfg = Wav2Vec2Config.from_hf_config(config, ctc=ctc)
    labels = _ctc_labels(files, cfg.aux_num_out) if ctc else None
    extractor = _read_json(files, "preprocessor_config.json") or {}
    normalize = bool(extractor.get("do_normalize", True)) if isinstance(extractor, dict) else True
    blank = config.get("pad_token_id", 0)
    model = Wav2Vec2Model(cfg, labels=labels, blank=blank if isinstance(blank, int) else 0,
                          normalize_waveform=normalize)
    model.load_state_dict(hf_wav2vec2_state(state), strict=True)
    return model


SUPPORTED_FAMILIES: dict[str, Callable[[dict[str, Any], ModelFiles, SentencePipeline | None], Any]] = {
    "bert": _bert,
    "distilbert": _distilbert,
    "roberta": _roberta,
    "gpt2": _gpt2,
    "wav2vec2": _wav2vec2,
}


def load_pretrained(files: ModelFiles | str | Path) -> Any:
    """Build the hubkit model of a Hugging Face folder (a path, or :class:`ModelFiles` such as a Hub repo's) with its
    weights loaded strictly, its tokenizer attached, in ``eval()`` mode (see the module docstring)."""
    if isinstance(files, (str, Path)):
        folder = Path(files).expanduser()
        if not folder.is_dir():
            raise CheckpointError(f"{folder} is not a directory; expected a Hugging Face model folder")
        files = FolderFiles(folder)
    pipeline = sentence_pipeline(files)
    model_files = _Sub(files, pipeline.transformer) if pipeline is not None else files
    config = _read_json(model_files, "config.json", required=True)
    if not isinstance(config, dict):
        raise CheckpointError(f"config.json of {model_files.where} is not a JSON object")
    family = family_of(config, model_files.where)
    if pipeline is not None and family != "bert":
        raise ArgumentError(f"{files.where} is a sentence-transformers model on a {family} encoder; hubkit runs "
                            "sentence-transformers pipelines on BERT encoders (model_type 'bert') only.")
    model = SUPPORTED_FAMILIES[family](config, model_files, pipeline)
    model.eval()
    return model
