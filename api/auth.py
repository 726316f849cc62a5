"""Who is calling: roles, the principal, and the dashboard's signed session cookie.

The API authenticates with bearer tokens (``wafsmith token create``); the dashboard signs a
token in once and then carries a session cookie. The cookie holds no secret: only the token's
id, the session's id, an expiry and the session's CSRF token, signed with HMAC-SHA256 so it
cannot be forged. The token is looked up again on every request, so revoking it ends its
sessions too, and signing out records the session's id as revoked in the ledger, so a copied
cookie is dead after logout even though it has not expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

# Roles in increasing power; a role may do everything the roles before it may.
ROLES = ("viewer", "analyst", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

SESSION_COOKIE = "wafsmith_session"
LOGIN_COOKIE = "wafsmith_login"  # the sign-in form's CSRF token (double-submit)
LOGIN_FORM_TTL_S = 3600.0


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the token's name (recorded in the audit log) and its role."""

    name: str
    role: str
    token_id: str

    def may(self, role: str) -> bool:
        """True when this principal's role is at least ``role``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True, slots=True)
class Session:
    """The content of a dashboard session cookie."""

    token_id: str
    csrf: str
    expires_at: float
    session_id: str = ""


class SessionSigner:
    """Seals small JSON documents (sessions, flash messages) into tamper-proof strings.

    Each sealed value names its purpose, so a flash message can never pass as a session.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._secret = secret

    def new(self, token_id: str, *, now: float, ttl_s: float) -> Session:
        return Session(
            token_id=token_id,
            csrf=secrets.token_urlsafe(24),
            expires_at=now + ttl_s,
            session_id=secrets.token_hex(16),
        )

    def dumps(self, session: Session) -> str:
        doc = {
            "t": session.token_id,
            "c": session.csrf,
            "e": session.expires_at,
            "s": session.session_id,
        }
        return self.seal("session", doc)

    def loads(self, value: str, *, now: float) -> Session | None:
        """The session in ``value``, or None when it is forged, malformed or expired."""
        doc = self.unseal("session", value)
        try:
            session = Session(
                token_id=str(doc["t"]),
                csrf=str(doc["c"]),
                expires_at=float(doc["e"]),
                session_id=str(doc["s"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if now < session.expires_at else None

    def login_form(self, *, now: float) -> tuple[str, str]:
        """A fresh sign-in CSRF token and the sealed cookie that vouches for it."""
        token = secrets.token_urlsafe(24)
        return token, self.seal("login", {"c": token, "e": now + LOGIN_FORM_TTL_S})

    def login_form_matches(self, cookie: str | None, submitted: str | None, *, now: float) -> bool:
        """True when the sign-in form's CSRF field matches its unexpired sealed cookie."""
        doc = self.unseal("login", cookie) if cookie else {}
        token, expires = doc.get("c"), doc.get("e")
        if not isinstance(token, str) or not isinstance(expires, int | float) or now >= expires:
            return False
        return bool(submitted) and hmac.compare_digest(token, submitted or "")

    def seal(self, purpose: str, doc: dict) -> str:
        body = json.dumps({"p": purpose, "d": doc}, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def unseal(self, purpose: str, value: str) -> dict:
        """The document sealed for ``purpose``; empty when forged, malformed or for another."""
        payload, _, signature = value.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return {}
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return {}
        if not isinstance(body, dict) or body.get("p") != purpose:
            return {}
        return body.get("d") if isinstance(body.get("d"), dict) else {}

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_matches(session: Session, submitted: str | None) -> bool:
    """Constant-time check of a form's CSRF field against the session's token."""
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")
