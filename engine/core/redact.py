"""Secrets out of anything that is logged: URL passwords and secret-looking query values.

``redact_text`` rewrites every URL-ish piece of a string: the password of
``scheme://user:password@host`` and the value of each query parameter whose name looks like
a secret (``password``, ``token``, ``api_key``, ``X-Amz-Signature``, ...), in full URLs and in
bare request targets (``/login?password=...``) alike. ``RedactingFilter`` applies it to log
records (message, arguments and structured fields) before any handler formats them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
# Query parameter names holding a secret: matched anywhere in the name, case-insensitively.
SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|key|sig|auth|cred|session|cookie|otp|nonce", re.IGNORECASE
)
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):(?P<pw>[^/?#\s]*)@")
# A value runs to the next separator, space or double quote (log formats quote the request).
_QUERY_PAIR = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#\s?]+)=(?P<value>[^&;#\s\"]*)")


def redact_text(text: str) -> str:
    """``text`` with URL passwords and secret query values replaced by ``[redacted]``."""
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_redact_pair, text)
    return text


def _redact_pair(match: re.Match[str]) -> str:
    if not SECRET_NAME.search(match["name"]) or not match["value"]:
        return match.group()
    return f"{match['sep']}{match['name']}={REDACTED}"


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _redact_value(value: Any) -> Any:
    return redact_text(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Redact secrets in a record's message and string arguments, keeping their shape
    (uvicorn's access formatter unpacks the arguments as a tuple)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):  # structured ``extra`` fields
                setattr(record, key, redact_text(value))
        return True


def install_redaction(*logger_names: str) -> None:
    """Attach one ``RedactingFilter`` to each named logger and to every root handler."""
    redactor = RedactingFilter()
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(redactor)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
