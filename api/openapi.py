"""The OpenAPI document as the API really answers: problem+json errors, stable operation ids.

FastAPI documents every error reply as ``application/json`` and adds its own 422 shape
(``HTTPValidationError``) to each route with parameters; the API answers every error with a
problem document instead (``api.errors``). ``install_openapi`` rewrites the generated
document once: each 4xx/5xx reply is ``application/problem+json`` with ``ProblemOut``, and
the unused validation schemas are dropped. Operation ids are the route functions' names
(``list_decisions``, ``approve``, ...), so generated clients keep their method names.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.errors import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemOut"}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """The route function's name: short, stable, unique (a test checks the whole set)."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = problem_replies(document)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def problem_replies(document: dict[str, Any]) -> dict[str, Any]:
    """Every error reply documented as a problem document; FastAPI's own 422 shape removed."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for code, reply in operation.get("responses", {}).items():
                if str(code)[0] in "45":
                    reply["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
                    if str(code) == "422":
                        reply["description"] = "The request is invalid (a field, a CIDR, ...)"
    schemas = document.get("components", {}).get("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return document
