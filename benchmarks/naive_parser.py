"""The naive peer: the per-line logic of AWS's log-parser Lambda, on the standard library only.

``gzip.open``, decode, ``split(' ')`` per line, ``urlparse`` of the request URL, a dict
counter per client IP + minute. Kept apart from the benchmarks that compare against it so
that a child process running it imports what the Lambda would, and nothing else:
``python -m benchmarks.naive_parser FILE.gz`` prints the line count.
"""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from urllib.parse import urlparse


def naive(data: bytes) -> int:
    """AWS log-parser style: one Python pass per line, a dict of counts per (IP, minute)."""
    counts: dict[tuple[str, str], int] = {}
    lines = 0
    with gzip.open(io.BytesIO(data), "rt") as fh:
        for line in fh:
            lines += 1
            fields = line.split(" ")
            if len(fields) < 14:
                continue
            client = fields[3].rsplit(":", 1)[0]
            minute = fields[1][:16]
            urlparse(fields[13])  # the Lambda parses the request URL for its URI checks
            key = (client, minute)
            counts[key] = counts.get(key, 0) + 1
    return lines


if __name__ == "__main__":
    print(sum(naive(Path(name).read_bytes()) for name in sys.argv[1:]))
