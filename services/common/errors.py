"""The one error shape of every service: ``{"error": {message, type, param, code}}``.

Routes raise :class:`APIError` (or a subclass); the handlers installed by
:func:`install_error_handlers` turn it, FastAPI's validation errors and any
unexpected exception into that shape. A stack trace never reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class APIError(Exception):
    """An error a route reports to its caller."""

    status_code = 400
    type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}


class PayloadTooLarge(APIError):
    status_code = 413


class UnsupportedMediaType(APIError):
    status_code = 415


class ServiceBusy(APIError):
    """The inference queue is full; the caller should retry later."""

    status_code = 503
    type = "server_busy"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, code="queue_full", headers={"Retry-After": str(retry_after_s)})


class Unauthorized(APIError):
    status_code = 401
    type = "authentication_error"

    def __init__(self, message: str = "missing or invalid bearer token") -> None:
        super().__init__(message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


class NotFound(APIError):
    status_code = 404
    type = "not_found_error"


class ModelError(APIError):
    """Our fault: the model failed on valid input."""

    status_code = 500
    type = "server_error"


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    msg = str(first.get("msg", "invalid value"))
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON", None
    return (f"{param}: {msg}" if param else msg), param


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` use the one shape."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.message, exc.type, exc.param, exc.code),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return JSONResponse(
            error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        if exc.status_code >= 500:
            type_ = "server_error"
        return JSONResponse(
            error_body(str(exc.detail), type_),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error: %s", exc)
        return JSONResponse(error_body("internal server error", "server_error"), status_code=500)
