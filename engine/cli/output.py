"""What the commands share about their output: JSON to a file or stdout (``-``), the
"nothing could be parsed" warning, and AWS errors in one line instead of a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STDOUT = "-"


def write_json(doc: Any, target: str | Path) -> None:
    """``doc`` as indented JSON to the file ``target``, or to stdout when it is ``-``."""
    text = json.dumps(doc, indent=2, default=str, ensure_ascii=False)
    if str(target) == STDOUT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        Path(target).write_text(text + "\n", encoding="utf-8")


def nothing_parsed(objects: int, rows: int, malformed: Mapping[str, int]) -> str | None:
    """A warning when the input held no request the parsers understood, else None.

    An Apache access log parses as 100 % ``unknown_format``: that is a wrong input, not an
    empty one, and the caller exits non-zero on it.
    """
    if rows:
        return None
    if not objects:
        return "no log objects found in the input"
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(malformed.items()) if n)
    return (
        f"nothing in {objects:,} object(s) could be parsed ({reasons or 'no lines'}); "
        "wafsmith reads ALB, CloudFront and AWS WAF logs (see --format)"
    )


AWS_HINTS = {
    "NoCredentialsError": "no AWS credentials found (set AWS_PROFILE, AWS_ACCESS_KEY_ID/"
    "AWS_SECRET_ACCESS_KEY, or run where an instance/task role is available)",
    "PartialCredentialsError": "incomplete AWS credentials",
    "EndpointConnectionError": "cannot reach the AWS endpoint",
    "ConnectTimeoutError": "the AWS endpoint did not answer in time",
    "NoRegionError": "no AWS Region configured (set AWS_DEFAULT_REGION or [aws] region)",
}


def aws_error_line(exc: BaseException) -> str | None:
    """One line for an AWS client error (credentials, access, endpoint), else None.

    Walks the exception's causes, since sources may wrap botocore's error in their own.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            error = current.response.get("Error", {})
            operation = getattr(current, "operation_name", "a call")
            code = error.get("Code", "error")
            message = error.get("Message", "") or str(current)
            return f"AWS refused {operation}: {code}: {message}"
        if isinstance(current, BotoCoreError):
            hint = AWS_HINTS.get(type(current).__name__)
            return f"{hint}: {current}" if hint else f"AWS error: {current}"
        current = current.__cause__ or current.__context__
    return None
