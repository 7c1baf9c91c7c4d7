"""Errors as RFC 9457 problem details; the one place error types meet HTTP status codes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from loopml.core import errors

PROBLEM_TYPE_PREFIX = "urn:loopml:problem:"
MEDIA_TYPE = "application/problem+json"

STATUS: dict[type[errors.LoopmlError], int] = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.PayloadTooLarge: 413,
    errors.JobCancelled: 409,
    errors.IntegrityError: 500,
    errors.StorageError: 503,
}

_HTTP_CODES = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    field: str | None = None,
    errors_: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": code.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if field:
        body["field"] = field
    if errors_:
        body["errors"] = errors_
    return JSONResponse(
        body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {})
    )


def status_of(exc: errors.LoopmlError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def error_response(exc: errors.LoopmlError, path: str) -> JSONResponse:
    """The problem response for ``exc``, raised while answering ``path``."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.Unauthenticated) else None
    return problem(
        status_of(exc),
        exc.code,
        exc.message,
        instance=path,
        field=exc.field,
        errors_=exc.extra.get("problems"),
        headers=headers,
        extensions=_extensions(exc),
    )


_MEMBERS = {"type", "title", "status", "detail", "instance", "field", "errors", "problems"}


def _extensions(exc: errors.LoopmlError) -> dict[str, Any]:
    """RFC 9457's extension members: what else names a caller's problem (a CSV's line).
    A server's own failure (5xx) shows nothing beyond its detail."""
    if status_of(exc) >= 500:
        return {}
    return {
        k: v
        for k, v in exc.extra.items()
        if k not in _MEMBERS
        and isinstance(v, str | int | float | bool)
        and (not isinstance(v, float) or math.isfinite(v))
    }


async def _loopml_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.LoopmlError)
    return error_response(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()
    ]
    if any(d["type"] == "json_invalid" for d in details):
        ctx = next(e.get("ctx", {}) for e in exc.errors() if e["type"] == "json_invalid")
        return problem(
            400,
            "malformed-json",
            f"request body is not valid JSON: {ctx.get('error', 'parse error')}",
            instance=request.url.path,
            field="body",
        )
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return problem(
        422,
        errors.InvalidInput.code,
        summary,
        instance=request.url.path,
        field=details[0]["field"] if details else None,
        errors_=details,
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path.

    Starlette's 405 names only the methods of the first route matching the path, so
    ``GET /projects`` and ``POST /projects``, being two routes, would each hide the other.
    """
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if "fastapi" in scope:  # routing bookkeeping, written to while matching
            scope["fastapi"] = dict(scope["fastapi"])
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http-error")
    detail = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource: {request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = _allowed_methods(request) or [
            m.strip() for m in headers.get("Allow", "").split(",") if m.strip()
        ]
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not allowed on {request.url.path}; use {headers['Allow']}"
    return problem(exc.status_code, code, detail, instance=request.url.path, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        500,
        "internal-error",
        f"internal error ({type(exc).__name__}); the server log has the details",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.LoopmlError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
