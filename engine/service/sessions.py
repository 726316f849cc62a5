"""Dashboard sessions revoked before they expire (signed out), kept in the ledger.

A session cookie is self-contained and signed, so without a record on the server a copied
cookie would stay valid until it expires. Signing out stores the session's id here; every
dashboard request checks it. One small row per sign-out, under its own key, so concurrent
sign-outs (several API processes) never overwrite each other.
"""

from __future__ import annotations

import re

from engine.service.base import ServiceBase
from engine.service.errors import InvalidInput

REVOKED_PREFIX = "session.revoked."
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


class SessionMethods(ServiceBase):
    """Record and look up revoked dashboard sessions."""

    def revoke_session(self, session_id: str, *, expires_at: float) -> None:
        """Mark a session signed out (until ``expires_at``, after which it is dead anyway)."""
        self.ledger.put_status(_key(session_id), {"expires_at": float(expires_at)})

    def session_revoked(self, session_id: str) -> bool:
        return self.ledger.get_status(_key(session_id)) is not None


def _key(session_id: str) -> str:
    if not _SESSION_ID.match(session_id):
        raise InvalidInput("malformed session id")
    return REVOKED_PREFIX + session_id
