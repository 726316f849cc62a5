"""The API's own settings turned into ``create_app`` options, for the commands that serve it.

The session secret comes inline (``WAFSMITH_API__SESSION_SECRET``) or from a file; a file
that cannot be read or holds too short a secret is a ``ConfigError`` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.errors import ConfigError
from engine.settings import ApiSettings


def app_options(api: ApiSettings) -> dict[str, Any]:
    """``create_app``'s session and limit options from the ``[api]`` settings.

    Raises ``ConfigError`` naming the problem when the session secret file cannot be read or
    is too short.
    """
    return {
        "session_secret": session_secret(api),
        "session_ttl_s": api.session_ttl_s,
        "secure_cookies": api.secure_cookies,
        "max_body_bytes": api.max_body_bytes,
    }


def session_secret(api: ApiSettings) -> bytes | None:
    """The configured secret that signs dashboard cookies, or None (a random one per run)."""
    if api.session_secret is not None:
        return api.session_secret.get_secret_value().encode()
    if api.session_secret_file is None:
        return None
    return read_secret_file(api.session_secret_file, what="api.session_secret_file")


def read_secret_file(path: Path, *, what: str) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    if len(secret) < 16:
        raise ConfigError(f"{what} {path}: the secret needs at least 16 bytes")
    return secret
