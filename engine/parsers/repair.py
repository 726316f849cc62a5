"""Repairs that keep a damaged line readable, so one bad byte cannot hide a request.

An attacker controls the user agent, the URL and the headers: one byte that is not UTF-8, or
one ``"`` in a quoted ALB field, would otherwise cost the whole line, and with it the request
the detectors should have seen. A line is repaired only where its fields can still be found:

- invalid UTF-8 sequences become U+FFFD (``invalid_utf8``);
- in a space-separated, quoted layout (ALB), a quoted field runs from its opening ``"`` to the
  next ``"`` followed by a space or the end of the line; any ``"`` inside it becomes U+FFFD
  and a field still open at the end of the line is closed there (``unbalanced_quote``).

Each repaired line is counted by what was repaired (``ParseResult.repaired``); the line is
then read like any other and may still be rejected for another reason.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd".encode()
_FIELD = re.compile(rb'"(?:[^"]|"(?! |$))*(?:"(?= |$)|$)|[^ ]+')
FIELD_TOKENS = re.compile(rb'"[^"]*"|[^ ]+')  # fields of a line whose quotes are balanced


def repair_utf8(line: bytes) -> bytes:
    """``line`` with every invalid UTF-8 sequence replaced by U+FFFD."""
    return line.decode("utf-8", errors="replace").encode("utf-8")


def repair_quotes(line: bytes) -> bytes | None:
    """``line`` (space-separated, ``"``-quoted fields) with balanced quotes, or None when no
    field structure can be recovered (no space-separated fields at all)."""
    fields = _FIELD.findall(line)
    if len(fields) < 2:
        return None
    out = []
    for field in fields:
        if field.startswith(b'"'):
            closed = len(field) > 1 and field.endswith(b'"')
            inner = field[1:-1] if closed else field[1:]
            field = b'"' + inner.replace(b'"', REPLACEMENT) + b'"'
        else:
            field = field.replace(b'"', REPLACEMENT)
        out.append(field)
    return b" ".join(out)
