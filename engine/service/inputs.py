"""Checks of caller-supplied text before it reaches the ledger.

PostgreSQL refuses NUL characters in text and SQLite stores 64-bit integers only, so a NUL
byte in an id or comment, or a cursor beyond 2**63, would surface as a database error (a 500)
instead of a named refusal. Every facade method that takes free text from a caller runs it
through here first and raises ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import re

from engine.service.errors import InvalidInput

MAX_ID_CHARS = 64
MAX_COMMENT_CHARS = 2000
MAX_CURSOR = 2**63 - 1
# C0 controls other than tab / newline / carriage return, DEL, and NUL: never legitimate.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def checked_text(value: str, *, field: str, max_chars: int) -> str:
    """``value`` when it fits ``max_chars`` and holds no control characters (NUL included)."""
    if len(value) > max_chars:
        raise InvalidInput(f"{field} is longer than {max_chars} characters")
    found = _CONTROL.search(value)
    if found:
        raise InvalidInput(
            f"{field} holds the control character U+{ord(found.group()):04X} "
            f"at position {found.start()}"
        )
    return value


def checked_id(value: str, *, field: str = "decision id") -> str:
    """A decision or entry id: short, printable, no whitespace."""
    checked_text(value, field=field, max_chars=MAX_ID_CHARS)
    if not value or any(ch.isspace() for ch in value):
        raise InvalidInput(f"{field} {value!r} is empty or holds whitespace")
    return value


def checked_comment(value: str | None) -> str | None:
    return (
        None if value is None else checked_text(value, field="comment", max_chars=MAX_COMMENT_CHARS)
    )


def checked_cursor(value: str | None) -> str | None:
    """A page cursor: the decimal position a previous page handed out (0..2**63-1)."""
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > MAX_CURSOR:
        raise InvalidInput(f"bad cursor {value[:40]!r}: pass back a page's next_cursor")
    return value
