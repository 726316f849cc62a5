"""Signing in to the dashboard as a browser does: load the form (its CSRF token and the
sealed cookie that vouches for it), then post the token with that CSRF field."""

from __future__ import annotations

import re


def login_csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the sign-in form has no CSRF field"
    return found.group(1)


def sign_in(client, token: str):
    form = client.get("/login")
    assert form.status_code == 200
    data = {"token": token, "csrf": login_csrf_of(form.text)}
    return client.post("/login", data=data, follow_redirects=False)
