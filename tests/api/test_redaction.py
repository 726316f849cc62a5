"""Secrets never survive ``redact_text`` (what every log line goes through), whatever they
hold; the rest of the line is kept so the request is still traceable."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from engine.core.redact import REDACTED, redact_text

# What a password or token may hold inside a URL (percent-encoded specials included).
SECRET = st.text(string.ascii_letters + string.digits + "-._~%!$'()*+,", min_size=6, max_size=40)
NAMES = st.sampled_from(
    ["password", "passwd", "pwd", "token", "access_token", "api_key", "X-Amz-Signature",
     "X-Amz-Security-Token", "client_secret", "sessionid", "Auth"]
)  # fmt: skip


@given(secret=SECRET.filter(lambda s: "@" not in s))
def test_userinfo_passwords_are_redacted(secret: str) -> None:
    template = "connecting to postgresql+psycopg://wafsmith:{}@db.internal:5432/ledger"
    # Exactly the secret is replaced: a secret such as "connec" may also spell part of the
    # line around it, so "secret not in out" would be the wrong property.
    assert redact_text(template.format(secret)) == template.format(REDACTED)


@given(secret=SECRET, name=NAMES, before=st.booleans())
def test_secret_query_values_are_redacted(secret: str, name: str, before: bool) -> None:
    def line(value: str) -> str:
        query = f"{name}={value}&limit=5" if before else f"limit=5&{name}={value}"
        return f'127.0.0.1:5000 - "GET /api/v1/status?{query} HTTP/1.1" 200'

    assert redact_text(line(secret)) == line(REDACTED)


@given(value=st.text(string.ascii_letters + string.digits, min_size=1, max_size=20))
def test_ordinary_parameters_are_kept(value: str) -> None:
    line = f"GET /dashboard/queue?cursor={value}&state=proposed"
    assert redact_text(line) == line
