"""Dependencies, each defined once as an ``Annotated`` alias and reused by every route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import ROLES, Principal
from engine.service import Service

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A token made with `wafsmith token create --name N --role viewer|analyst|admin`.",
)


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def get_principal(service: ServiceDep, credentials: BearerDep) -> Principal:
    """The caller behind the ``Authorization: Bearer`` header; 401 without a valid one."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required", challenge)
    identity = service.authenticate(credentials.credentials)
    if identity is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "the token is unknown or revoked", challenge
        )
    return Principal(name=identity.name, role=identity.role, token_id=identity.token_id)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(role: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through principals whose role is at least ``role`` (else 403)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {ROLES}")

    def check(principal: PrincipalDep) -> Principal:
        if not principal.may(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {role!r} role; token {principal.name!r} has {principal.role!r}",
            )
        return principal

    return check


ViewerDep = Annotated[Principal, Depends(require_role("viewer"))]
AnalystDep = Annotated[Principal, Depends(require_role("analyst"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
