"""The dashboard's policy page: everyone signed in reads it, admins change it.

Admins edit the policy document (JSON, validated by the ledger's model) and the allowlist;
each form carries the session's CSRF token and every change is audited with the admin's name.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ServiceDep
from api.routes.dashboard import UserDep, flash_redirect, read_flash, refuse, render
from engine.service import ServiceError

PAGE = "/dashboard/policy"

router = APIRouter(include_in_schema=False)


@router.get(PAGE)
def policy_page(request: Request, service: ServiceDep, user: UserDep) -> HTMLResponse:
    policy = service.get_policy()
    return render(
        request,
        "policy.html",
        user,
        version=policy["version"],
        document=json.dumps({k: v for k, v in policy.items() if k != "version"}, indent=2),
        allowlist=service.allowlist(),
        **read_flash(request),
    )


@router.post(PAGE)
def save_policy(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    csrf: Annotated[str, Form()] = "",
    document: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    refused = refuse(request, user, csrf=csrf, role="admin")
    if refused is not None:
        return refused
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        return flash_redirect(request, PAGE, error=f"The policy is not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        return flash_redirect(request, PAGE, error="The policy must be a JSON object.")
    try:
        saved = service.put_policy(parsed, by=user.principal.name)
    except ServiceError as exc:
        return flash_redirect(request, PAGE, error=f"Policy refused: {exc}")
    return flash_redirect(request, PAGE, message=f"Policy version {saved['version']} saved.")


@router.post(f"{PAGE}/allowlist")
def change_allowlist(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    csrf: Annotated[str, Form()] = "",
    cidr: Annotated[str, Form(max_length=64)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    remove: Annotated[str, Form()] = "",
) -> Response:
    refused = refuse(request, user, csrf=csrf, role="admin")
    if refused is not None:
        return refused
    try:
        if remove:
            service.remove_allowlist(cidr, by=user.principal.name)
            done = f"{cidr} removed from the allowlist."
        else:
            entry = service.add_allowlist(cidr, by=user.principal.name, comment=comment or None)
            done = f"{entry.cidr} allowlisted; overlapping open decisions were closed."
    except ServiceError as exc:
        return flash_redirect(request, PAGE, error=str(exc))
    return flash_redirect(request, PAGE, message=done)
