"""One contender as a child process, measured as the operating system counts it.

Whole-process comparisons (``bench_parse``, ``bench_analyze``) run each contender as its own
interpreter so that start-up, imports and every thread count: wall seconds, CPU seconds
(user + system of the child and its threads, from ``wait4``) and peak RSS.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(argv: list[str]) -> dict:
    """Run ``argv`` from the repository; its wall and CPU seconds, peak RSS (MB) and stdout.

    Its stderr goes to a temporary file (read only to explain a failure), so neither pipe
    can fill and stall the child while the other is read."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-500:]
            raise RuntimeError(f"{argv} failed with status {status}: {tail}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "stdout": out.decode(),
    }
