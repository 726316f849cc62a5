"""Re-implemented peer baselines (``peer-baselines.md``), scored like wafsmith.

Each baseline reads the canonical rows of the log its real counterpart reads (WAF logs for
the rate rule and the AWS flood parsers, ALB logs for the scanner parsers, CrowdSec and
fail2ban) and returns a ``BaselineResult``: client IP → ``Flag(detected_ms, effective_ms,
reason)``.

    results = run_baselines({"alb": alb_table, "waf": waf_table}, corpora=Path(...))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from benchmarks.baselines import aws_solution
from benchmarks.baselines.common import BaselineResult, Flag
from benchmarks.baselines.crowdsec import crowdsec_http
from benchmarks.baselines.fail2ban import fail2ban_http
from benchmarks.baselines.waf_rate import waf_rate_rule


@dataclass(frozen=True)
class Baseline:
    """A named baseline, the log it reads, and how to run it."""

    baseline_id: str
    reads: str  # "alb" | "waf"
    run: Callable[[pa.Table, Path | None], BaselineResult]


BASELINES: tuple[Baseline, ...] = (
    Baseline("waf-rbr-100", "waf", lambda t, c: waf_rate_rule(t, 100)),
    Baseline("waf-rbr-2000", "waf", lambda t, c: waf_rate_rule(t, 2000)),
    Baseline(
        "aws-sa-flood-lambda-documented",
        "waf",
        lambda t, c: aws_solution.flood_lambda(t, "documented"),
    ),
    Baseline(
        "aws-sa-flood-lambda-as-shipped",
        "waf",
        lambda t, c: aws_solution.flood_lambda(t, "as-shipped"),
    ),
    Baseline("aws-sa-flood-athena", "waf", lambda t, c: aws_solution.flood_athena(t)),
    Baseline("aws-sa-scanner-lambda", "alb", lambda t, c: aws_solution.scanner(t, "lambda")),
    Baseline("aws-sa-scanner-athena", "alb", lambda t, c: aws_solution.scanner(t, "athena")),
    Baseline("crowdsec-http", "alb", lambda t, c: crowdsec_http(t, c)),
    Baseline("fail2ban-http", "alb", lambda t, c: fail2ban_http(t, c)),
)


def run_baselines(
    tables: dict[str, pa.Table], corpora: Path | None = None, only: tuple[str, ...] | None = None
) -> dict[str, BaselineResult]:
    """Run every baseline (or ``only`` those ids) on the table of the log it reads."""
    out = {}
    for b in BASELINES:
        if only is not None and b.baseline_id not in only:
            continue
        if b.reads not in tables:
            raise KeyError(f"baseline {b.baseline_id} needs the {b.reads!r} table")
        out[b.baseline_id] = b.run(tables[b.reads], corpora)
    return out


__all__ = ["BASELINES", "Baseline", "BaselineResult", "Flag", "run_baselines"]
