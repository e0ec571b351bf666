"""The errors a request can meet, as TorchServe reports them: ``{"code": 404, "type": "ModelNotFoundException",
"message": "Model not found: densenet161"}`` with the HTTP status ``code``."""

from __future__ import annotations

from typing import Any

from hubkit.errors import HubkitError

__all__ = ["ConfigError", "HTTPError"]


class ConfigError(HubkitError, ValueError):
    """A serve configuration (file, flag or model spec) that cannot be used as written."""


class HTTPError(HubkitError):
    """An answer other than success: ``code`` is the HTTP status, ``type`` TorchServe's exception name.

    ``headers`` go on the response (``Retry-After`` for a full queue); ``extra`` adds keys to the JSON body
    (the list of served models on a 404).
    """

    def __init__(self, code: int, type: str, message: str, *, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.code = code
        self.type = type
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "type": self.type, "message": self.message, **self.extra}

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the worker pipe
        return (_rebuild, (self.code, self.type, self.message, self.headers, self.extra))


def _rebuild(code: int, type: str, message: str, headers: dict[str, str], extra: dict[str, Any]) -> HTTPError:
    return HTTPError(code, type, message, headers=headers, extra=extra)


def bad_request(message: str) -> HTTPError:
    return HTTPError(400, "BadRequestException", message)


def too_large(message: str) -> HTTPError:
    return HTTPError(413, "RequestEntityTooLargeException", message)


def unsupported_media(message: str) -> HTTPError:
    return HTTPError(415, "UnsupportedMediaTypeException", message)


def unavailable(message: str, *, retry_after: int | None = None) -> HTTPError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return HTTPError(503, "ServiceUnavailableException", message, headers=headers)
