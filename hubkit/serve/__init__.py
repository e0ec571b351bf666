"""hubkit.serve: zoo models and your checkpoints behind TorchServe's HTTP API (extra ``serve``: starlette,
uvicorn, python-multipart).

    hubkit serve resnet18 all-MiniLM-L6-v2 --port 8080
    curl http://127.0.0.1:8080/predictions/resnet18 -T cat.jpg

From Python::

    from hubkit.serve import Server, build_config
    Server(build_config(models=["mymodel=resnet18:weights.safetensors"])).run()

Layout: ``config`` (specs, config files, flags), ``handlers`` (the model side, in worker processes), ``worker``
(the processes), ``store`` (queues, dynamic batching, scaling), ``app`` (the Starlette apps), ``metrics``,
``openapi``, ``server`` (listeners and signals), ``static/`` (the web page). Nothing is imported until used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ModelConfig", "ModelStore", "ServeConfig", "Server", "build_config", "parse_model_spec"]

_WHERE = {"ModelConfig": "config", "ServeConfig": "config", "build_config": "config", "parse_model_spec": "config",
          "ModelStore": "store", "Server": "server"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"hubkit.serve.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'hubkit.serve' has no attribute {name!r}")
