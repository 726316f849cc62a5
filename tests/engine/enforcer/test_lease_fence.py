"""Fencing: an engine that lost the enforcer lease sends no WAF write, publishes no status and
marks nothing applied — even when it loses the lease in the middle of a cycle.

Real parts: a PostgreSQL ledger with two leases on their own connections, WAFv2 on the moto
server over HTTP.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from engine.cli import enforce as enforce_cli
from engine.core.clock import FakeClock, SystemClock
from engine.core.lease import LeaseLost
from engine.decisions import DatabaseLease, Ledger, db
from engine.enforcer import Boto3WafV2Api, Mode
from engine.schema.decision import Status
from engine.settings import Settings
from engine.status import EnforcementStatus, read
from tests.support.enforcement import approved_blocks, enforce_cycle, enforcement_settings
from tests.support.waf import NOW, WEB_ACL, acl_body, all_addresses, ip_set_contents

pytestmark = pytest.mark.postgres

CLIENTS = ("198.51.100.1", "198.51.100.3", "2001:db8::7")


@pytest.fixture()
def ledger(pg_url: str) -> Iterator[Ledger]:
    """A PostgreSQL ledger holding approved block decisions (IPv4 and IPv6: two IP sets)."""
    with approved_blocks(pg_url, CLIENTS) as opened:
        yield opened


@pytest.fixture()
def leases(pg_url: str, fake_clock: FakeClock) -> Iterator[tuple[DatabaseLease, DatabaseLease]]:
    engines = [db.create_engine(pg_url), db.create_engine(pg_url)]
    pair = tuple(
        DatabaseLease(e, name="enforcer", instance_id=f"engine-{n}", clock=fake_clock)
        for e, n in zip(engines, "ab", strict=True)
    )
    yield pair  # type: ignore[misc]
    for lease in pair:
        lease.release()
    for engine in engines:
        engine.dispose()


def take_over(old: DatabaseLease, new: DatabaseLease) -> None:
    """End the holder's session (a partition, a failover) and let the standby acquire."""
    with old.engine.connect() as conn:  # any session may end another of the same role
        pid = conn.execute(sa.select(db.lease.c.backend_pid)).scalar_one()
        conn.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
    deadline = time.monotonic() + 5
    while not new.try_acquire():
        assert time.monotonic() < deadline, "the standby did not acquire the freed lease"
        time.sleep(0.05)


def enforce(ledger: Ledger, config: Settings, clock: FakeClock, lease: DatabaseLease, **kw: Any):
    return enforce_cycle(ledger, config, clock, Mode.ENFORCE, fence=lease, **kw)


def test_a_stale_holder_writes_nothing_and_the_new_holder_converges(
    aws_endpoint, wafv2, web_acl, ledger, leases, fake_clock
):
    a, b = leases
    assert a.try_acquire()
    take_over(a, b)
    config = enforcement_settings(aws_endpoint, mode="enforce")

    with pytest.raises(LeaseLost):
        enforce(ledger, config, fake_clock, a)

    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []
    assert acl_body(wafv2)["Rules"] == web_acl["Rules"]
    assert read(ledger, EnforcementStatus) is None
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPROVED}

    done = enforce(ledger, config, fake_clock, b)
    assert done.result is not None and done.result.ok
    assert all_addresses(ip_set_contents(wafv2)) == {
        "198.51.100.1/32",
        "198.51.100.3/32",
        "2001:db8::7/128",
    }
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPLIED}
    assert ledger.lease_holder("enforcer").epoch == 2


class LosesLeaseAfterFirstWrite:
    """The WAFv2 API, except that right after the first write the holder's session ends and
    the standby takes the lease: the rest of the cycle runs on a lost lease."""

    def __init__(self, inner: Boto3WafV2Api, old: DatabaseLease, new: DatabaseLease) -> None:
        self._inner, self._old, self._new = inner, old, new
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._inner, name)
        if not name.startswith(("create_", "update_", "delete_")):
            return fn

        def call(**kw: Any) -> dict[str, Any]:
            self.writes.append(name)
            reply = fn(**kw)
            if len(self.writes) == 1:
                take_over(self._old, self._new)
            return reply

        return call


def test_a_lease_lost_mid_cycle_stops_the_writes_at_the_next_one(
    aws_endpoint, wafv2, web_acl, ledger, leases, fake_clock, boto_session
):
    a, b = leases
    assert a.try_acquire()
    api = LosesLeaseAfterFirstWrite(
        Boto3WafV2Api(endpoint_url=aws_endpoint, max_attempts=1, session=boto_session), a, b
    )

    with pytest.raises(LeaseLost):
        enforce(
            ledger, enforcement_settings(aws_endpoint, mode="enforce"), fake_clock, a, wafv2=api
        )

    assert api.writes == ["create_ip_set"]  # the one made while it held the lease
    assert len(wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]) == 1
    assert acl_body(wafv2)["Rules"] == web_acl["Rules"]  # never reached
    assert read(ledger, EnforcementStatus) is None
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPROVED}


def wafsmith_enforce(*argv: str) -> int:
    """``wafsmith enforce`` in-process (the dispatcher with just this subcommand)."""
    parser = argparse.ArgumentParser(prog="wafsmith")
    enforce_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["enforce", "--writes-per-second", "1000", *argv])
    return int(args.func(args))


def test_wafsmith_enforce_once_sends_nothing_while_an_engine_holds_the_lease(
    aws_endpoint, wafv2, web_acl, ledger, leases, pg_url, capsys
):
    # A running engine on the system clock, as the command is (staleness compares the two).
    engine = DatabaseLease(
        leases[0].engine, name="enforcer", instance_id="engine-a", clock=SystemClock()
    )
    assert engine.try_acquire()
    argv = ["--once", "--database-url", pg_url, "--endpoint-url", aws_endpoint]
    argv += ["--web-acl", WEB_ACL, "--now", NOW.isoformat()]

    assert wafsmith_enforce(*argv) == 3
    assert "engine-a (epoch 1) holds the enforcer lease" in capsys.readouterr().err
    assert wafsmith_enforce(*argv, "--dry-run") == 0  # planning needs no lease
    assert wafsmith_enforce(*argv, "--count-only") == 3
    assert wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] == []
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPROVED}

    engine.release()
    assert wafsmith_enforce(*argv) == 0
    assert len(all_addresses(ip_set_contents(wafv2))) == len(CLIENTS)
    assert {d.status for d in ledger.enforceable(NOW)} == {Status.APPLIED}
    holder = ledger.lease_holder("enforcer")
    assert holder.instance_id.startswith("wafsmith-enforce:") and holder.epoch == 2
