"""What ``hubkit serve`` serves and how: model specs, the config file (TorchServe's ``config.properties`` keys, or
TOML) and the command-line flags.

A model spec is ``[name=]source``: the source is a registry name (``resnet18``), a weight tag
(``resnet50.IMAGENET1K_V1``), or an architecture and a checkpoint (``resnet18:weights/finetuned.safetensors``,
any format hubkit reads, or a Hugging Face folder for text encoders). The served name defaults to the
architecture's.

Precedence: a command-line flag beats the config file, which beats the defaults; a setting written for one model
(``[models.NAME]`` in TOML, TorchServe's ``models=`` JSON) beats the server-wide default it refines.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hubkit.serve.errors import ConfigError

__all__ = [
    "ModelConfig", "ServeConfig", "build_config", "parse_address", "parse_model_spec", "read_config_file",
    "read_properties",
]

logger = logging.getLogger("hubkit.serve")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_URL_SCHEMES = ("http://", "https://", "file://")


@dataclass
class ModelConfig:
    """One served model. ``None`` fields take the server-wide default (:meth:`ServeConfig.resolve`).

    ``url`` is the source as written (``"resnet18"``, ``"resnet18.IMAGENET1K_V1"``, ``"resnet18:/abs/w.pt"``);
    ``max_batch_delay`` is in milliseconds and ``response_timeout`` in seconds, as in TorchServe.
    """

    name: str
    url: str
    version: str = "1.0"
    batch_size: int | None = None
    max_batch_delay: float | None = None
    min_workers: int | None = None
    max_workers: int | None = None
    response_timeout: float | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    labels: str | None = None
    topk: int = 5
    device: str | None = None

    @property
    def arch(self) -> str:
        return split_source(self.url)[0]

    @property
    def tag(self) -> str | None:
        return split_source(self.url)[1]

    @property
    def checkpoint(self) -> str | None:
        return split_source(self.url)[2]

    def worker_spec(self, *, max_image_pixels: int, device: str | None) -> dict[str, Any]:
        """What a worker process needs to build the model (plain data: it is pickled to a spawned process)."""
        return {"name": self.name, "arch": self.arch, "tag": self.tag, "checkpoint": self.checkpoint,
                "model_kwargs": dict(self.model_kwargs), "labels": self.labels, "topk": self.topk,
                "device": self.device or device, "max_image_pixels": max_image_pixels}  # fmt: skip


def split_source(source: str) -> tuple[str, str | None, str | None]:
    """``"resnet18"`` -> (resnet18, None, None); ``"resnet50.IMAGENET1K_V1"`` -> (resnet50, IMAGENET1K_V1, None);
    ``"resnet18:w.pt"`` -> (resnet18, None, w.pt). Architecture names hold no ``:``, so a Windows drive letter
    or a URL in the checkpoint part is kept whole."""
    arch, sep, checkpoint = source.partition(":")
    arch = arch.strip()
    if sep and not checkpoint.strip():
        raise ConfigError(f"model source {source!r} ends with ':' but names no checkpoint; write arch:path/to/weights")
    if arch.startswith(("http", "file")) and checkpoint.startswith("//"):
        raise ConfigError(
            f"model source {source!r} is a bare URL; hubkit needs the architecture too: NAME=ARCH:{source} "
            f"(e.g. mymodel=resnet18:{source})"
        )
    name, _, tag = arch.partition(".")
    if not name:
        raise ConfigError(f"model source {source!r} names no architecture; expected e.g. resnet18 or resnet18:w.pt")
    if tag and sep:
        raise ConfigError(f"model source {source!r} gives both a weight tag and a checkpoint; pick one")
    return name, (tag or None), (checkpoint.strip() if sep else None)


def parse_model_spec(spec: str, *, base_dir: str | os.PathLike | None = None) -> ModelConfig:
    """``[name=]source`` -> :class:`ModelConfig`; a relative checkpoint path is resolved against ``base_dir``
    (the config file's ``model_store``, else the current directory)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"a model spec must be a non-empty string like resnet18 or name=arch:checkpoint, "
                          f"got {spec!r}")
    spec = spec.strip()
    name, eq, source = spec.partition("=")
    if not eq:
        name, source = "", spec
    arch, _, checkpoint = split_source(source)
    name = name.strip() or arch
    check_name(name)
    return ModelConfig(name=name, url=_absolute_source(source, checkpoint, base_dir))


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"served model name {name!r} must be letters, digits, '_', '-' or '.', starting with a "
                          "letter or digit (it becomes part of the URL /predictions/NAME)")  # fmt: skip
    return name


def _absolute_source(source: str, checkpoint: str | None, base_dir: str | os.PathLike | None) -> str:
    if checkpoint is None or checkpoint.startswith(_URL_SCHEMES):
        return source.strip()
    path = Path(checkpoint).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or os.getcwd()) / path
    return f"{source.partition(':')[0].strip()}:{path}"


@dataclass
class ServeConfig:
    """Server-wide settings; names are TorchServe's ``config.properties`` keys where TorchServe has one.

    Defaults follow TorchServe (listeners on 127.0.0.1:8080/8081/8082, a 100-job queue, 6,553,500-byte requests,
    120 s response timeout, batch size 1, 100 ms batch delay) except ``default_workers_per_model``: one worker
    per model, because each worker's BLAS already uses every core.
    """

    inference_address: str = "127.0.0.1:8080"
    management_address: str = "127.0.0.1:8081"
    metrics_address: str = "127.0.0.1:8082"
    models: list[ModelConfig] = field(default_factory=list)
    default_workers_per_model: int = 1
    batch_size: int = 1
    max_batch_delay: float = 100.0
    default_response_timeout: float = 120.0
    startup_timeout: float = 120.0
    graceful_timeout: float | None = None
    job_queue_size: int = 100
    max_request_size: int = 6553500
    max_image_pixels: int = 40_000_000
    management_token: str | None = None
    allowed_urls: tuple[str, ...] = (r"file://.*", r"http(s)?://.*")
    model_store: str | None = None
    threads_per_worker: int | None = None
    device: str | None = None
    access_log: str = "-"

    def __post_init__(self) -> None:
        for key in ("inference_address", "management_address", "metrics_address"):
            parse_address(getattr(self, key))
        _positive_int("default_workers_per_model", self.default_workers_per_model, allow_zero=True)
        _positive_int("batch_size", self.batch_size)
        _positive_int("job_queue_size", self.job_queue_size)
        _positive_int("max_request_size", self.max_request_size)
        _positive_int("max_image_pixels", self.max_image_pixels)
        if self.threads_per_worker is not None:
            _positive_int("threads_per_worker", self.threads_per_worker)
        _non_negative("max_batch_delay", self.max_batch_delay)
        _positive("default_response_timeout", self.default_response_timeout)
        _positive("startup_timeout", self.startup_timeout)
        if self.graceful_timeout is not None:
            _positive("graceful_timeout", self.graceful_timeout)
        for pattern in self.allowed_urls:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ConfigError(f"allowed_urls: {pattern!r} is not a regular expression ({e})") from None
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"model name(s) {', '.join(dupes)} given twice; give each served model its own "
                              "name with NAME=SOURCE")  # fmt: skip
        for m in self.models:
            self.resolve(m)

    def resolve(self, model: ModelConfig) -> ModelConfig:
        """``model`` with every ``None`` replaced by the server-wide default, validated."""
        workers = model.min_workers if model.min_workers is not None else self.default_workers_per_model
        out = replace(
            model,
            batch_size=model.batch_size if model.batch_size is not None else self.batch_size,
            max_batch_delay=model.max_batch_delay if model.max_batch_delay is not None else self.max_batch_delay,
            min_workers=workers,
            max_workers=model.max_workers if model.max_workers is not None else workers,
            response_timeout=(model.response_timeout if model.response_timeout is not None
                              else self.default_response_timeout),  # fmt: skip
            device=model.device or self.device,
        )
        check_name(out.name)
        split_source(out.url)
        _positive_int(f"{out.name}: batch_size", out.batch_size)
        _non_negative(f"{out.name}: max_batch_delay", out.max_batch_delay)
        _positive_int(f"{out.name}: min_workers", out.min_workers, allow_zero=True)
        _positive_int(f"{out.name}: max_workers", out.max_workers, allow_zero=True)
        _positive(f"{out.name}: response_timeout", out.response_timeout)
        _positive_int(f"{out.name}: topk", out.topk)
        if not isinstance(out.model_kwargs, dict):
            raise ConfigError(f"{out.name}: model_kwargs must be a table/object of builder arguments, got "
                              f"{type(out.model_kwargs).__name__}")  # fmt: skip
        return out

    @property
    def shutdown_timeout(self) -> float:
        return self.graceful_timeout if self.graceful_timeout is not None else self.default_response_timeout


def _positive_int(name: str, value: Any, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}")


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")


def _non_negative(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a number of milliseconds >= 0, got {value!r}")


def parse_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"``, ``"http://0.0.0.0:8080"``, ``"[::1]:8080"`` -> (host, port); port 0 picks a free one."""
    if not isinstance(text, str):
        raise ConfigError(f"an address must be a string like 127.0.0.1:8080, got {text!r}")
    rest = text.strip()
    if rest.startswith("https://"):
        raise ConfigError(f"{text!r}: hubkit serve speaks plain HTTP; put TLS in a reverse proxy in front of it")
    rest = rest.removeprefix("http://").rstrip("/")
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s\[\]/]+):(\d+)", rest)
    if match is None:
        raise ConfigError(f"address {text!r} is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080)")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if port > 65535:
        raise ConfigError(f"address {text!r}: port {port} is out of range (0-65535)")
    return host, port


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------- config files

# TorchServe keys that have no meaning here: read without complaint, so a TorchServe config can be reused.
_TORCHSERVE_ONLY = {
    "number_of_netty_threads", "netty_client_threads", "number_of_gpu", "enable_metrics_api", "metrics_mode",
    "metrics_format", "decode_input_request", "grpc_inference_port", "grpc_management_port",
    "enable_envvars_config", "max_response_size", "unregister_model_timeout", "default_service_handler",
    "service_envelope", "cors_allowed_origin", "cors_allowed_methods", "cors_allowed_headers", "enable_grpc_ssl",
    "keystore", "keystore_pass", "keystore_type", "private_key_file", "certificate_file",
    "install_py_dep_per_model", "vmargs", "async_logging", "disable_token_auth", "enable_model_api",
    "workflow_store", "model_snapshot", "snapshot_store", "prefer_direct_buffer",
}  # fmt: skip
_INT_KEYS = {"default_workers_per_model", "batch_size", "job_queue_size", "max_request_size", "max_image_pixels",
             "threads_per_worker"}  # fmt: skip
_FLOAT_KEYS = {"max_batch_delay", "default_response_timeout", "startup_timeout", "graceful_timeout"}
_STR_KEYS = {"inference_address", "management_address", "metrics_address", "management_token", "model_store",
             "device", "access_log"}  # fmt: skip
_MODEL_KEYS = {  # per-model keys: TOML snake_case, TorchServe's models= JSON camelCase
    "url": "url", "marName": "url", "version": "version", "batch_size": "batch_size", "batchSize": "batch_size",
    "max_batch_delay": "max_batch_delay", "maxBatchDelay": "max_batch_delay", "min_workers": "min_workers",
    "minWorkers": "min_workers", "max_workers": "max_workers", "maxWorkers": "max_workers",
    "response_timeout": "response_timeout", "responseTimeout": "response_timeout", "model_kwargs": "model_kwargs",
    "modelKwargs": "model_kwargs", "labels": "labels", "topk": "topk", "device": "device", "deviceType": None,
    "defaultVersion": None,
}  # fmt: skip


def read_properties(text: str) -> dict[str, str]:
    """A Java ``.properties`` text -> ``{key: value}``: ``key=value``, ``key: value`` or ``key value``; ``#`` and
    ``!`` comment lines; a line ending in an odd number of backslashes continues on the next; ``\\t \\n \\\\``
    escapes."""
    out: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.lstrip() if not logical else raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:
            logical += line[:-1]
            continue
        logical += line
        key, value = _split_property(logical)
        out[key] = value
        logical = ""
    if logical:
        key, value = _split_property(logical)
        out[key] = value
    return out


def _split_property(line: str) -> tuple[str, str]:
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=: \t":
            break
        i += 1
    key, rest = line[:i], line[i:].lstrip(" \t")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t")
    return _unescape(key), _unescape(rest)


def _unescape(text: str) -> str:
    escapes = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), text)


def read_config_file(path: str | os.PathLike) -> tuple[dict[str, Any], list[ModelConfig]]:
    """A ``config.properties`` (TorchServe's keys) or ``.toml`` file -> (server settings, models).

    Relative checkpoint paths are resolved against ``model_store`` when given, else against the file's folder.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror or e}") from None
    if path.suffix.lower() == ".toml":
        data = _read_toml(text, path)
    else:
        data = dict(read_properties(text))
    settings: dict[str, Any] = {}
    load_models: list[str] = []
    model_tables: dict[str, Any] = {}
    for key, value in data.items():
        if key in _INT_KEYS:
            settings[key] = _coerce(key, value, int, path)
        elif key in _FLOAT_KEYS:
            settings[key] = _coerce(key, value, float, path)
        elif key in _STR_KEYS:
            settings[key] = str(value)
        elif key == "allowed_urls":
            settings[key] = tuple(_as_list(value))
        elif key == "load_models":
            load_models = _as_list(value)
        elif key == "models":
            model_tables = _models_table(value, path)
        elif key in _TORCHSERVE_ONLY:
            logger.info("%s: ignoring TorchServe's %s (it has no meaning for hubkit serve)", path, key)
        else:
            logger.warning("%s: unknown key %r ignored", path, key)
    if "model_store" in settings:
        settings["model_store"] = str((path.parent / Path(settings["model_store"]).expanduser()).resolve())
    base = settings.get("model_store") or path.parent
    models = [parse_model_spec(spec, base_dir=base) for spec in load_models if spec and spec != "all"]
    if "all" in load_models:
        raise ConfigError(f"{path}: load_models=all means every .mar of a TorchServe model store; list hubkit model "
                          "specs instead (resnet18, name=arch:checkpoint, ...)")  # fmt: skip
    by_name = {m.name: m for m in models}
    for name, table in model_tables.items():
        check_name(name)
        if "url" in table:
            base_model = parse_model_spec(f"{name}={table.pop('url')}", base_dir=base)
        elif name in by_name:
            base_model = by_name[name]
        else:
            raise ConfigError(f"{path}: model {name!r} has settings but no url (e.g. url = \"resnet18\" or "
                              "\"resnet18:weights.safetensors\") and is not in load_models")  # fmt: skip
        if table.get("labels"):
            label_path = Path(table["labels"]).expanduser()
            table["labels"] = str(label_path if label_path.is_absolute() else Path(base) / label_path)
        merged = replace(base_model, **table)
        by_name[name] = merged
        if base_model not in models:
            models.append(merged)
        else:
            models[models.index(base_model)] = merged
    return settings, models


def _read_toml(text: str, path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(f"{path}: reading TOML on Python 3.10 needs tomli (pip install tomli), or use a "
                              "config.properties file") from None  # fmt: skip
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None


def _coerce(key: str, value: Any, kind: type, path: Path) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be a number, got {value!r}")
    try:
        number = kind(value) if not isinstance(value, str) else kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: {key} must be a number, got {value!r}") from None
    if kind is int and isinstance(value, str) and float(value) != number:
        raise ConfigError(f"{path}: {key} must be a whole number, got {value!r}")
    return number


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Sequence):
        return [str(v).strip() for v in value if str(v).strip()]
    raise ConfigError(f"expected a comma-separated string or a list, got {value!r}")


def _models_table(value: Any, path: Path) -> dict[str, dict[str, Any]]:
    """TOML ``[models.NAME]`` tables, or TorchServe's ``models={"NAME": {"1.0": {...}}}`` JSON -> per-model dicts
    with :class:`ModelConfig` field names."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: models= must be JSON like {{\"name\": {{\"1.0\": {{...}}}}}} ({e})") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: models must map model names to their settings, got {type(value).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for name, table in value.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"{path}: settings of model {name!r} must be a table/object, got {table!r}")
        version = None
        versioned = [v for v in table.values() if isinstance(v, Mapping)]
        if versioned and len(versioned) == len(table) and "model_kwargs" not in table:  # TorchServe: {"1.0": {...}}
            if len(table) > 1:
                raise ConfigError(f"{path}: model {name!r} lists {len(table)} versions; hubkit serves one version "
                                  "per name (register each under its own name)")  # fmt: skip
            ((version, table),) = table.items()
        settings: dict[str, Any] = {}
        for key, setting in table.items():
            if key not in _MODEL_KEYS:
                known = sorted({k for k, v in _MODEL_KEYS.items() if v})
                raise ConfigError(f"{path}: model {name!r}: unknown setting {key!r}; known: {', '.join(known)}")
            target = _MODEL_KEYS[key]
            if target is not None:
                settings[target] = setting
        if version is not None:
            settings.setdefault("version", str(version))
        for key in ("batch_size", "min_workers", "max_workers", "topk"):
            if key in settings:
                settings[key] = _coerce(f"{name}.{key}", settings[key], int, path)
        for key in ("max_batch_delay", "response_timeout"):
            if key in settings:
                settings[key] = _coerce(f"{name}.{key}", settings[key], float, path)
        if "version" in settings:
            settings["version"] = str(settings["version"])
        out[str(name)] = settings
    return out


def build_config(
    *,
    config_file: str | os.PathLike | None = None,
    models: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    host: str | None = None,
    ports: Mapping[str, int | None] | None = None,
) -> ServeConfig:
    """Merge defaults, the config file, and command-line values (which win) into one :class:`ServeConfig`.

    ``models`` are specs from the command line, added after the file's; ``overrides`` are server-wide settings
    (``batch_size=8``); ``host`` replaces the host of all three listeners and ``ports`` (``inference``,
    ``management``, ``metrics``) their ports.
    """
    settings: dict[str, Any] = {}
    file_models: list[ModelConfig] = []
    if config_file is not None:
        settings, file_models = read_config_file(config_file)
    known = {f.name for f in fields(ServeConfig)}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ConfigError(f"unknown serve setting {key!r}")
        if value is not None:
            settings[key] = value
    for key, port in (ports or {}).items():
        if port is None:
            continue
        field_name = f"{key}_address"
        current = settings.get(field_name, getattr(ServeConfig, field_name))
        settings[field_name] = format_address(parse_address(current)[0], port)
    if host is not None:
        for key in ("inference_address", "management_address", "metrics_address"):
            current = settings.get(key, getattr(ServeConfig, key))
            settings[key] = format_address(host.strip("[]"), parse_address(current)[1])
    cli_models = [parse_model_spec(spec) for spec in models]
    settings["models"] = [*file_models, *cli_models]
    return ServeConfig(**settings)
