"""The ASGI apps (Starlette) behind the three listeners: inference (with the web page), management, metrics.

Every response passes through :class:`ServeMiddleware`, which adds TorchServe's common headers
(``x-request-id``, no-cache headers, ``Connection: close`` on errors), counts responses for ``/metrics`` and
writes one JSON access-log line per request to the ``hubkit.serve.access`` logger. Every error is a JSON body
``{"code", "type", "message"}``, as TorchServe answers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hubkit.errors import HubkitError
from hubkit.serve import openapi
from hubkit.serve.config import ModelConfig, check_name, parse_model_spec
from hubkit.serve.errors import HTTPError, bad_request, too_large, unsupported_media
from hubkit.serve.store import ModelStore

__all__ = ["ServeMiddleware", "create_inference_app", "create_management_app", "create_metrics_app"]

access_logger = logging.getLogger("hubkit.serve.access")
logger = logging.getLogger("hubkit.serve")

STATIC_DIR = Path(__file__).with_name("static")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# beyond this many bytes past the limit an oversized body is no longer drained before the 413 is sent
_DRAIN_LIMIT = 64 << 20


class PrettyJSONResponse(JSONResponse):
    """TorchServe pretty-prints its JSON and ends it with a newline."""

    def render(self, content: Any) -> bytes:
        return (json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


class CompactJSONResponse(JSONResponse):
    """Embeddings: hundreds of floats per text read better (and travel lighter) on one line."""

    def render(self, content: Any) -> bytes:
        return (json.dumps(content, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def error_response(error: HTTPError) -> Response:
    return PrettyJSONResponse(error.body(), status_code=error.code, headers=error.headers)


# ---------------------------------------------------------------- middleware


class ServeMiddleware:
    """The outermost ASGI layer of every listener: request ids, common headers, metrics, access log."""

    def __init__(self, app: Any, *, listener: str, store: ModelStore) -> None:
        self.app = app
        self.listener = listener
        self.store = store

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        state = {"status": 500, "out": 0, "in": 0, "started": False}

        async def counting_receive() -> dict:
            message = await receive()
            state["in"] += len(message.get("body", b""))
            return message

        async def decorated_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                headers["Pragma"] = "no-cache"
                headers["Cache-Control"] = "no-cache; no-store, must-revalidate, private"
                headers["Expires"] = "Thu, 01 Jan 1970 00:00:00 UTC"
                if message["status"] >= 400:
                    headers["Connection"] = "close"
            elif message["type"] == "http.response.body":
                state["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, decorated_send)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not state["started"]:
                await error_response(HTTPError(500, "InternalServerException", "internal error; see the server log"))(
                    scope, counting_receive, decorated_send)
        finally:
            status = int(state["status"])
            self.store.metrics.response(self.listener, status)
            if access_logger.isEnabledFor(logging.INFO):
                params = scope.get("path_params") or {}
                line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "listener": self.listener,
                        "request_id": request_id, "client": _client(scope), "method": scope.get("method"),
                        "path": scope.get("path"), "status": status, "bytes_in": state["in"],
                        "bytes_out": state["out"], "duration_ms": round((time.perf_counter() - started) * 1000, 3)}
                if "model_name" in params:
                    line["model"] = params["model_name"]
                access_logger.info(json.dumps(line))


def _client(scope: dict) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


def _exception_handlers() -> dict[Any, Callable]:
    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return error_response(exc)

    async def on_starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            error = HTTPError(404, "ResourceNotFoundException",
                              "Requested resource is not found, please refer to API document.")  # fmt: skip
        elif exc.status_code == 405:
            error = HTTPError(405, "MethodNotAllowedException",
                              f"{request.method} is not allowed on {request.url.path}", headers=exc.headers)
        else:
            error = HTTPError(exc.status_code, "HTTPException", str(exc.detail), headers=exc.headers)
        return error_response(error)

    async def on_error(request: Request, exc: Exception) -> Response:
        return error_response(HTTPError(500, "InternalServerException", "internal error; see the server log"))

    return {HTTPError: on_http_error, HTTPException: on_starlette_error, Exception: on_error}


# ---------------------------------------------------------------- request bodies


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (413 beyond; the rest is drained so the client reads the 413)."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.strip().isdigit():
        raise bad_request(f"Content-Length {declared!r} is not a number of bytes")
    size = f"{int(declared):,} bytes" if declared is not None else f"over {limit:,} bytes"
    error = too_large(f"the request body of {size} is over the limit of {limit:,} bytes (max_request_size)")
    if declared is not None and int(declared) > limit + _DRAIN_LIMIT:
        raise error
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit + _DRAIN_LIMIT:
            break
        if total <= limit:
            chunks.append(chunk)
    if total > limit:
        raise error
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _parser_kwargs(cls: type, limit: int) -> dict[str, Any]:
    accepted = inspect.signature(cls.__init__).parameters
    return {"max_part_size": limit} if "max_part_size" in accepted else {}  # starlette >= 0.40


async def read_form(request: Request, body: bytes, limit: int) -> Any:
    """The first usable field of a form body: ``data``, else ``body`` (TorchServe's handlers), else the first one;
    bytes for a file part, str for a plain field."""

    async def replay() -> AsyncIterator[bytes]:
        yield body
        yield b""

    media = _media_type(request)
    try:
        if media == "multipart/form-data":
            parser: Any = MultiPartParser(request.headers, replay(), max_files=16, max_fields=64,
                                          **_parser_kwargs(MultiPartParser, limit))  # fmt: skip
        else:
            parser = FormParser(request.headers, replay(), **_parser_kwargs(FormParser, limit))
        form = await parser.parse()
    except (MultiPartException, ValueError, KeyError) as e:
        raise bad_request(f"malformed {media} body: {getattr(e, 'message', e)}") from None
    items = list(form.multi_items())
    if not items:
        raise bad_request("the form has no fields; send the input in a field named 'data'")
    chosen = next((v for k, v in items if k == "data"), None) or next((v for k, v in items if k == "body"), None)
    value = chosen if chosen is not None else items[0][1]
    if isinstance(value, UploadFile):
        data = await value.read()
        await value.close()
        return data
    return value


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{what} is not valid base64; send the raw file as the body, or multipart field "
                          "'data'") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise bad_request(f"malformed JSON: {e}") from None


async def image_payload(request: Request, body: bytes, limit: int) -> bytes:
    media = _media_type(request)
    if media in ("multipart/form-data", "application/x-www-form-urlencoded"):
        value = await read_form(request, body, limit)
        data = value if isinstance(value, bytes) else _base64(value, "the form field")
    elif media == "application/json":
        doc = _json(body)
        if isinstance(doc, dict):
            doc = doc.get("data", doc.get("body"))
        if not isinstance(doc, str):
            raise bad_request('a JSON body for an image model must be a base64 string or {"data": "<base64>"}; '
                              "or send the image bytes themselves")  # fmt: skip
        data = _base64(doc, "the JSON image")
    elif media.startswith("text/"):
        raise unsupported_media(f"this is an image model and the body is {media}; send image bytes (image/jpeg, "
                                "image/png, application/octet-stream) or multipart field 'data'")  # fmt: skip
    else:
        data = body
    if not data:
        raise bad_request("the image is empty")
    return data


async def text_payload(request: Request, body: bytes, limit: int) -> dict[str, Any]:
    media = _media_type(request)
    if media == "application/json":
        doc = _json(body)
        if isinstance(doc, dict):
            if "texts" in doc:
                doc = doc["texts"]
            elif "text" in doc:
                doc = doc["text"]
            else:
                raise bad_request('a JSON object for a text model needs "text" or "texts"; got keys '
                                  f"{', '.join(map(repr, doc)) or 'none'}")  # fmt: skip
    elif media.startswith("text/") or media in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raw = body if media.startswith("text/") else await read_form(request, body, limit)
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise bad_request("the text is not valid UTF-8") from None
        doc = raw
    else:
        shown = media or "no Content-Type"
        raise unsupported_media(f"this is a text model and the body is {shown}; send JSON (a string, a list of "
                                'strings, {"texts": [...]}) or text/plain')  # fmt: skip
    if isinstance(doc, str):
        return {"texts": [doc], "single": True}
    if isinstance(doc, list) and doc and all(isinstance(t, str) for t in doc):
        return {"texts": doc, "single": False}
    if isinstance(doc, list) and not doc:
        raise bad_request("the list of texts is empty")
    raise bad_request(f"expected a string or a list of strings, got {type(doc).__name__}"
                      + (" with non-string items" if isinstance(doc, list) else ""))  # fmt: skip


async def audio_payload(request: Request, body: bytes, limit: int) -> bytes:
    media = _media_type(request)
    if media in ("multipart/form-data", "application/x-www-form-urlencoded"):
        value = await read_form(request, body, limit)
        data = value if isinstance(value, bytes) else _base64(value, "the form field")
    elif media.startswith(("text/", "image/")) or media == "application/json":
        raise unsupported_media(f"this is a speech model and the body is {media}; send WAV bytes (audio/wav) or "
                                "multipart field 'data'")  # fmt: skip
    else:
        data = body
    if not data:
        raise bad_request("the audio is empty")
    return data


_PAYLOADS = {"image": image_payload, "text": text_payload, "audio": audio_payload}


# ---------------------------------------------------------------- inference listener


def create_inference_app(store: ModelStore) -> Any:
    """TorchServe's inference API (``/ping``, ``/predictions/...``), ``/openapi.json``, and the web page at ``/``."""
    config = store.config

    async def page(request: Request) -> Response:
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))

    async def ping(request: Request) -> Response:
        healthy = store.healthy()
        status = "Healthy" if healthy else "Unhealthy"
        return PrettyJSONResponse({"status": status}, status_code=200 if healthy else 500)

    async def served(request: Request) -> Response:
        rows = [{"name": m.name, "version": m.version, "modality": m.modality, "task": m.task, "status": m.status,
                 "error": m.error} for m in store.models.values()]  # fmt: skip
        return PrettyJSONResponse(rows)

    async def predictions(request: Request) -> Response:
        name = request.path_params["model_name"]
        model = store.get(name, request.path_params.get("model_version"))
        if model.kind is None:
            raise HTTPError(503, "ServiceUnavailableException", f'Model "{name}" cannot be served: {model.error}')
        body = await read_body(request, config.max_request_size)
        if not body:
            raise bad_request("the request body is empty; send the input (image bytes, JSON texts or WAV audio)")
        payload = await _PAYLOADS[model.kind](request, body, config.max_request_size)
        started = time.perf_counter()
        code = 200
        try:
            answer = await model.infer(payload)
        except HTTPError as e:
            code = e.code
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics = store.metrics
            metrics.latency.observe(elapsed, name, str(code))
            if code == 200:
                metrics.requests.inc(name, model.version, metrics.hostname)
                metrics.inference_us.inc(name, model.version, metrics.hostname, amount=elapsed * 1e6)
        if model.kind == "audio":
            return PlainTextResponse(answer)
        if model.kind == "text":
            return CompactJSONResponse(answer)
        return PrettyJSONResponse(answer)

    async def explanations(request: Request) -> Response:
        store.get(request.path_params["model_name"], request.path_params.get("model_version"))
        raise HTTPError(501, "NotImplementedException", "explanations are not implemented by hubkit serve")

    async def description(request: Request) -> Response:
        return PrettyJSONResponse(openapi.inference_spec())

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/", description, methods=["OPTIONS"]),
        Route("/openapi.json", description, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/api/models", served, methods=["GET"]),
        # PUT too: TorchServe's own examples upload with `curl -T file`, which sends a PUT
        Route("/predictions/{model_name}", predictions, methods=["POST", "PUT"]),
        Route("/predictions/{model_name}/{model_version}", predictions, methods=["POST", "PUT"]),
        Route("/explanations/{model_name}", explanations, methods=["POST"]),
        Route("/explanations/{model_name}/{model_version}", explanations, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return ServeMiddleware(Starlette(routes=routes, exception_handlers=_exception_handlers()),
                           listener="inference", store=store)  # fmt: skip


# ---------------------------------------------------------------- management listener


def _int(request: Request, name: str, default: int | None, *, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"query parameter {name}={raw!r} must be a whole number") from None
    if value < minimum:
        raise bad_request(f"query parameter {name}={value} must be >= {minimum}")
    return value


def _seconds(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise bad_request(f"query parameter {name}={raw!r} must be a number of seconds > 0")
    return value


def _bool(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise bad_request(f"query parameter {name}={raw!r} must be true or false")


class _TokenAuth:
    """``Authorization: Bearer <token>`` on every management call when a token is configured."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            given = Headers(scope=scope).get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token):
                error = HTTPError(401, "TokenAuthorizationException",
                                  "Token Authorization failed. Token either incorrect, expired, or not provided "
                                  "correctly: send 'Authorization: Bearer <management token>'",
                                  headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_management_app(store: ModelStore) -> Any:
    """TorchServe's management API: list, describe, register, scale, unregister."""
    config = store.config

    async def list_models(request: Request) -> Response:
        limit = _int(request, "limit", 100, minimum=1)
        start = _int(request, "next_page_token", 0)
        names = sorted(store.models)
        page = names[start:start + limit]
        rows = []
        for name in page:
            m = store.models[name]
            row = {"modelName": name, "modelUrl": m.config.url, "status": m.status}
            if m.error is not None:
                row["error"] = m.error
            rows.append(row)
        out: dict[str, Any] = {"models": rows}
        if start + limit < len(names):
            out = {"nextPageToken": str(start + limit), **out}
        return PrettyJSONResponse(out)

    async def register(request: Request) -> Response:
        url = request.query_params.get("url")
        if not url:
            raise bad_request("register needs url=: a registry name (resnet18), a tag (resnet50.IMAGENET1K_V1) or "
                              "arch:checkpoint (resnet18:/path/weights.safetensors)")  # fmt: skip
        name = request.query_params.get("model_name")
        try:
            spec = parse_model_spec(f"{name}={url}" if name else url)
            if name:
                check_name(name)
        except HubkitError as e:
            raise bad_request(str(e)) from None
        _check_allowed(spec, config.allowed_urls)
        kwargs_text = request.query_params.get("model_kwargs")
        model_kwargs = _json(kwargs_text.encode()) if kwargs_text else {}
        if not isinstance(model_kwargs, dict):
            raise bad_request("model_kwargs must be a JSON object, e.g. {\"num_classes\": 10}")
        labels = request.query_params.get("labels") or None
        if labels is not None:
            _check_allowed_path(labels, config.allowed_urls, "labels file")
        spec = ModelConfig(
            name=spec.name, url=spec.url,
            batch_size=_int(request, "batch_size", None, minimum=1),
            max_batch_delay=_int(request, "max_batch_delay", None),
            response_timeout=_seconds(request, "response_timeout"),
            model_kwargs=model_kwargs, labels=labels,
        )  # fmt: skip
        workers = _int(request, "initial_workers", 0)
        synchronous = _bool(request, "synchronous", False)
        try:
            model = store.register(spec, workers=workers)
        except HTTPError:
            raise
        except HubkitError as e:
            code, kind = (404, "ModelNotFoundException") if isinstance(e, KeyError) else (400, "BadRequestException")
            raise HTTPError(code, kind, str(e)) from None
        if synchronous and workers:
            if not await model.wait_workers(config.startup_timeout):
                reason = model.error or "the workers did not start in time"
                await store.unregister(model.name)
                raise HTTPError(500, "InternalServerException",
                                f"Failed to start workers for model {model.name} version: {model.version}: {reason}")
            return _status(f'Model "{model.name}" Version: {model.version} registered with {workers} initial workers')
        if workers:
            return _status("Processing worker updates...", 202)
        return _status(f'Model "{model.name}" Version: {model.version} registered with 0 initial workers. Use scale '
                       "workers API to add workers for the model.")  # fmt: skip

    async def describe(request: Request) -> Response:
        model = store.get(request.path_params["model_name"], request.path_params.get("model_version"))
        return PrettyJSONResponse([model.as_json()])

    async def scale(request: Request) -> Response:
        model = store.get(request.path_params["model_name"], request.path_params.get("model_version"))
        low = _int(request, "min_worker", 1)
        high = _int(request, "max_worker", low)
        if high < low:
            raise bad_request(f"max_worker={high} is below min_worker={low}")
        synchronous = _bool(request, "synchronous", False)
        wait = _int(request, "timeout", -1, minimum=-1)
        model.config.max_workers = high
        model.scale(low)
        if not synchronous:
            return _status("Processing worker updates...", 202)
        if not await model.wait_workers(config.startup_timeout if wait in (-1, None) else wait):
            raise HTTPError(500, "InternalServerException",
                            f"Failed to scale model {model.name} to {low} workers: "
                            f"{model.error or 'timed out waiting for the workers'}")  # fmt: skip
        return _status(f"Workers scaled to {low} for model: {model.name}")

    async def unregister(request: Request) -> Response:
        name = request.path_params["model_name"]
        await store.unregister(name, request.path_params.get("model_version"))
        return _status(f'Model "{name}" unregistered')

    async def description(request: Request) -> Response:
        return PrettyJSONResponse(openapi.management_spec())

    routes = [
        Route("/", description, methods=["OPTIONS"]),
        Route("/openapi.json", description, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/models", register, methods=["POST"]),
        Route("/models/{model_name}", describe, methods=["GET"]),
        Route("/models/{model_name}", scale, methods=["PUT"]),
        Route("/models/{model_name}", unregister, methods=["DELETE"]),
        Route("/models/{model_name}/{model_version}", describe, methods=["GET"]),
        Route("/models/{model_name}/{model_version}", scale, methods=["PUT"]),
        Route("/models/{model_name}/{model_version}", unregister, methods=["DELETE"]),
    ]
    app: Any = Starlette(routes=routes, exception_handlers=_exception_handlers())
    if config.management_token:
        app = _TokenAuth(app, config.management_token)
    return ServeMiddleware(app, listener="management", store=store)


def _status(message: str, code: int = 200) -> Response:
    return PrettyJSONResponse({"status": message}, status_code=code)


def _check_allowed(spec: ModelConfig, patterns: tuple[str, ...]) -> None:
    """TorchServe's ``allowed_urls``: a checkpoint given to the management API must match one of the patterns
    (local paths are matched as ``file://`` URLs). Registry names and tags are always allowed."""
    if spec.checkpoint is not None:
        _check_allowed_path(spec.checkpoint, patterns, "checkpoint")


def _check_allowed_path(source: str, patterns: tuple[str, ...], what: str) -> None:
    url = source if source.startswith(("http://", "https://", "file://")) else Path(source).resolve().as_uri()
    if not any(re.fullmatch(p, url) for p in patterns):
        raise bad_request(f"{what} {url} does not match any of allowed_urls ({', '.join(patterns)})")


# ---------------------------------------------------------------- metrics listener


def create_metrics_app(store: ModelStore) -> Any:
    """``GET /metrics``: Prometheus text; ``?name[]=a&name[]=b`` keeps only those families."""

    async def metrics(request: Request) -> Response:
        names = request.query_params.getlist("name[]")
        return Response(store.metrics.render(names), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def description(request: Request) -> Response:
        return PrettyJSONResponse(openapi.metrics_spec())

    routes = [Route("/metrics", metrics, methods=["GET"]), Route("/openapi.json", description, methods=["GET"]),
              Route("/", description, methods=["OPTIONS"])]  # fmt: skip
    return ServeMiddleware(Starlette(routes=routes, exception_handlers=_exception_handlers()),
                           listener="metrics", store=store)  # fmt: skip
