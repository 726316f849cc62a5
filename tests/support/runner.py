"""Engine-loop test helpers: the tests' event-time start and the engine's WAF block set."""

from __future__ import annotations

from datetime import UTC, datetime

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def engine_block_set(wafv2) -> list[str]:
    sets = {s["Name"]: s for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]}
    found = sets["wafsmith-block-v4-0"]
    return wafv2.get_ip_set(Name=found["Name"], Scope="REGIONAL", Id=found["Id"])["IPSet"][
        "Addresses"
    ]
