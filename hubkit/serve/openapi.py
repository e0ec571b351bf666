"""OpenAPI 3.0.1 descriptions of the three listeners, answered at ``GET /openapi.json`` and, as TorchServe does,
``OPTIONS /``."""

from __future__ import annotations

from typing import Any

__all__ = ["inference_spec", "management_spec", "metrics_spec"]

_ERROR = {
    "type": "object",
    "required": ["code", "type", "message"],
    "properties": {"code": {"type": "integer"}, "type": {"type": "string"}, "message": {"type": "string"}},
}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {400: "Bad input", 401: "Missing or wrong management token", 404: "Unknown model, version or path",
               405: "Method not allowed", 409: "Already registered", 413: "Body (or decoded image) too large",
               415: "Content type this model does not take", 500: "Model or worker failure",
               501: "Not implemented", 503: "No worker, model failed to load, or queue full (Retry-After)",
               504: "No answer within response_timeout"}  # fmt: skip
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {str(c): {"description": reasons[c], "content": body} for c in codes}


def _param(name: str, where: str, kind: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": {"type": kind}}


_MODEL = _param("model_name", "path", "string", "Served model name", True)
_VERSION = _param("model_version", "path", "string", "Model version", True)


def _doc(title: str, description: str, paths: dict[str, Any]) -> dict[str, Any]:
    from hubkit import __version__

    return {"openapi": "3.0.1", "info": {"title": title, "description": description, "version": __version__},
            "paths": paths, "components": {"schemas": {"Error": _ERROR}}}  # fmt: skip


def inference_spec() -> dict[str, Any]:
    predict_body = {
        "description": "Vision: image bytes (any Content-Type but text/* and JSON), multipart field `data`, or JSON "
                       "{\"data\": base64}. Text: JSON string, list of strings, {\"text\": ...} or {\"texts\": [...]}, "
                       "or text/plain. Audio: WAV bytes or multipart field `data`.",
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "data": {"type": "string", "format": "binary"}}}},
                    "application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}},
    }  # fmt: skip
    answers = {
        "200": {"description": "Vision: {label: probability} for the top 5, descending. Text: one embedding (array "
                               "of floats) per text. Audio: the transcript as text/plain.",
                "content": {"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}}},
        **_errors(400, 404, 413, 415, 500, 503, 504),
    }  # fmt: skip
    predict = {"post": {"operationId": "predictions", "summary": "Run the model on one input",
                        "parameters": [_MODEL], "requestBody": predict_body, "responses": answers}}  # fmt: skip
    predict_version = {"post": {**predict["post"], "operationId": "version_predictions",
                                "parameters": [_MODEL, _VERSION]}}  # fmt: skip
    not_impl = {"post": {"operationId": "explanations", "summary": "Not implemented (501)", "parameters": [_MODEL],
                         "responses": _errors(501)}}  # fmt: skip
    return _doc("hubkit serve: inference API", "TorchServe's inference API on hubkit's zoo models", {
        "/": {"options": {"operationId": "apiDescription", "summary": "This description",
                          "responses": {"200": {"description": "OpenAPI 3.0.1 JSON"}}},
              "get": {"operationId": "page", "summary": "The web page to try the served models",
                      "responses": {"200": {"description": "HTML"}}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This description",
                                  "responses": {"200": {"description": "OpenAPI 3.0.1 JSON"}}}},
        "/ping": {"get": {"operationId": "ping", "summary": "Health: {\"status\": \"Healthy\"} or Unhealthy (500)",
                          "responses": {"200": {"description": "Healthy"}, "500": {"description": "Unhealthy"}}}},
        "/api/models": {"get": {"operationId": "servedModels", "summary": "Served models, for the web page",
                                "responses": {"200": {"description": "[{name, version, modality, task, status}]"}}}},
        "/predictions/{model_name}": predict,
        "/predictions/{model_name}/{model_version}": predict_version,
        "/explanations/{model_name}": not_impl,
    })  # fmt: skip


def management_spec() -> dict[str, Any]:
    name_q = _param("model_name", "query", "string", "Name to serve it under (default: the architecture)")
    register = [
        _param("url", "query", "string", "arch, arch.tag, or arch:checkpoint (path, file:// or http(s):// URL)", True),
        name_q,
        _param("batch_size", "query", "integer", "Requests per batch (default 1)"),
        _param("max_batch_delay", "query", "integer", "Milliseconds to wait for a batch to fill (default 100)"),
        _param("initial_workers", "query", "integer", "Workers to start (default 0, as TorchServe)"),
        _param("synchronous", "query", "boolean", "Wait for the workers to load (default false)"),
        _param("response_timeout", "query", "integer", "Seconds before a request fails with 504 (default 120)"),
        _param("model_kwargs", "query", "string", "JSON object of builder arguments, e.g. {\"num_classes\": 10}"),
        _param("labels", "query", "string", "Path of an index_to_name.json"),
    ]
    scale = [_MODEL, _param("min_worker", "query", "integer", "Workers wanted (default 1)"),
             _param("max_worker", "query", "integer", "Kept for TorchServe compatibility (>= min_worker)"),
             _param("synchronous", "query", "boolean", "Wait until the workers are up or gone"),
             _param("timeout", "query", "integer", "Seconds to wait when synchronous (-1: the startup timeout)")]
    status = {"200": {"description": "{\"status\": message}"}}
    model_ops = {
        "get": {"operationId": "describeModel", "parameters": [_MODEL],
                "responses": {"200": {"description": "[model object]"}, **_errors(404)}},
        "put": {"operationId": "setAutoScale", "parameters": scale,
                "responses": {**status, "202": {"description": "Processing worker updates..."},
                              **_errors(400, 404, 500)}},
        "delete": {"operationId": "unregisterModel", "parameters": [_MODEL], "responses": {**status, **_errors(404)}},
    }  # fmt: skip
    versioned = {op: {**spec, "operationId": spec["operationId"] + "Version",
                      "parameters": [*spec["parameters"], _VERSION]} for op, spec in model_ops.items()}  # fmt: skip
    return _doc("hubkit serve: management API", "TorchServe's management API; Bearer token when configured", {
        "/": {"options": {"operationId": "apiDescription", "responses": {"200": {"description": "OpenAPI JSON"}}}},
        "/openapi.json": {"get": {"operationId": "openapi", "responses": {"200": {"description": "OpenAPI JSON"}}}},
        "/models": {
            "get": {"operationId": "listModels",
                    "parameters": [_param("limit", "query", "integer", "Page size (default 100)"),
                                   _param("next_page_token", "query", "string", "Offset from the previous page")],
                    "responses": {"200": {"description": "{models: [{modelName, modelUrl, status}], nextPageToken}"},
                                  **_errors(401)}},
            "post": {"operationId": "registerModel", "parameters": register,
                     "responses": {**status, "202": {"description": "Processing worker updates..."},
                                   **_errors(400, 401, 404, 409, 500)}},
        },
        "/models/{model_name}": model_ops,
        "/models/{model_name}/{model_version}": versioned,
    })  # fmt: skip


def metrics_spec() -> dict[str, Any]:
    return _doc("hubkit serve: metrics", "Prometheus text exposition", {
        "/metrics": {"get": {"operationId": "metrics",
                             "parameters": [_param("name[]", "query", "string", "Keep only these metric families")],
                             "responses": {"200": {"description": "text/plain; version=0.0.4"}}}},
    })  # fmt: skip
