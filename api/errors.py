"""Every error reply in one shape: an RFC 7807 problem document (``application/problem+json``).

Named service errors, ``HTTPException`` (401/403 and Starlette's own 404/405), request
validation errors (422) and oversized bodies (413, ``api.limits``) all answer with
``{"type", "title", "status", "detail", "instance", "error"}`` (``ProblemOut``); 422 adds the
invalid fields under ``errors``. Dashboard pages keep their HTML error page.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ProblemOut
from engine.service import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    ServiceError,
    Unavailable,
)

PROBLEM_JSON = "application/problem+json"

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
    413: "body_too_large",
    422: "invalid_input",
    503: "unavailable",
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    request: Request,
    code: int,
    error: str,
    detail: object,
    headers: dict | None = None,
    errors: list[dict] | None = None,
) -> ProblemResponse:
    """The problem document for ``code``; ``detail`` is always a sentence."""
    body = ProblemOut(
        title=_phrase(code),
        status=code,
        detail=detail if isinstance(detail, str) else str(jsonable_encoder(detail)),
        instance=request.url.path,
        error=error,
        errors=errors,
    ).model_dump(exclude_none=True)
    return ProblemResponse(body, status_code=code, headers=headers)


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; a service error never escapes as a 500."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> ProblemResponse:
        for kind in type(exc).__mro__:
            if kind in ERROR_STATUS:
                code, name = ERROR_STATUS[kind]
                return problem(request, code, name, str(exc))
        raise exc

    # Starlette's base class: also catches the router's own 404 and 405.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        name = HTTP_CODES.get(exc.status_code, "error")
        return problem(request, exc.status_code, name, exc.detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> ProblemResponse:
        fields = [
            {
                "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        detail = (
            "; ".join(f"{'.'.join(str(p) for p in f['loc'])}: {f['msg']}" for f in fields)
            or "the request is invalid"
        )
        return problem(
            request, status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_request", detail, errors=fields
        )


def responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI documentation of the error replies a route can give (``api.openapi`` files
    them under ``application/problem+json``)."""
    words = {
        401: "No bearer token, or an unknown or revoked token",
        403: "The token's role is too low for this route",
        404: "No such object",
        409: "The change conflicts with the object's current state",
        413: "The request body is larger than the configured limit",
        422: "The request is invalid (bad CIDR, /0, bad field, ...)",
        503: "The ledger database does not answer",
    }
    return {code: {"model": ProblemOut, "description": words[code]} for code in codes}
