"""Service errors → HTTP replies, all in one ``{"error", "detail"}`` shape (``ErrorOut``)."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import ErrorOut
from engine.service import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    ServiceError,
    Unavailable,
)

# How each named service error reaches the caller.
ERROR_STATUS: dict[type[ServiceError], tuple[int, str]] = {
    NotFound: (status.HTTP_404_NOT_FOUND, "not_found"),
    IllegalTransition: (status.HTTP_409_CONFLICT, "illegal_transition"),
    Conflict: (status.HTTP_409_CONFLICT, "conflict"),
    InvalidInput: (status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_input"),
    Unavailable: (status.HTTP_503_SERVICE_UNAVAILABLE, "unavailable"),
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_input",
}


def _error(code: int, error: str, detail: object, headers: dict | None = None) -> JSONResponse:
    body = ErrorOut(error=error, detail=jsonable_encoder(detail)).model_dump()
    return JSONResponse(body, status_code=code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; a service error never escapes as a 500."""

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        for kind in type(exc).__mro__:
            if kind in ERROR_STATUS:
                code, name = ERROR_STATUS[kind]
                return _error(code, name, str(exc))
        raise exc

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        name = HTTP_CODES.get(exc.status_code, "error")
        return _error(exc.status_code, name, exc.detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_request", details)


def responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI documentation of the error replies a route can give."""
    words = {
        401: "No bearer token, or an unknown or revoked one",
        403: "The token's role is too low for this route",
        404: "No such object",
        409: "The change conflicts with the object's current state",
        422: "The request is invalid (bad CIDR, /0, bad field, ...)",
        503: "The ledger database does not answer",
    }
    return {code: {"model": ErrorOut, "description": words[code]} for code in codes}
