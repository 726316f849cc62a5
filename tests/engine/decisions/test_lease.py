"""The enforcer lease on real databases: two engines (two SQLAlchemy engines, so two
connection pools, as two processes would have) contend for one lease in one ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from engine.core.clock import FakeClock, SystemClock
from engine.core.lease import FencingToken, LeaseLost
from engine.decisions import DatabaseLease, Ledger, db
from engine.decisions.lease import lock_key
from engine.schema.decision import Status

pytestmark = pytest.mark.postgres

MakeLease = Callable[..., DatabaseLease]


@pytest.fixture()
def ledger(pg_url: str, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(pg_url, clock=clock) as opened:
        yield opened


@pytest.fixture()
def make_lease(ledger: Ledger, pg_url: str, clock: FakeClock) -> Iterator[MakeLease]:
    """A lease for a new instance, over its own engine (its own connections)."""
    engines: list[sa.Engine] = []
    leases: list[DatabaseLease] = []

    def make(instance_id: str, *, name: str = "enforcer", **kw: float) -> DatabaseLease:
        engine = db.create_engine(pg_url)
        engines.append(engine)
        lease = DatabaseLease(engine, name=name, instance_id=instance_id, clock=clock, **kw)
        leases.append(lease)
        return lease

    yield make
    for lease in leases:
        lease.release()
    for engine in engines:
        engine.dispose()


def end_session_of(lease: DatabaseLease, pg_url: str) -> None:
    """What a lost network or a database failover does to the holder: its session ends."""
    holder = lease.holder()
    assert holder is not None
    with db.create_engine(pg_url).connect() as conn:
        pid = conn.execute(
            sa.select(db.lease.c.backend_pid).where(db.lease.c.name == lease.name)
        ).scalar_one()
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid}).scalar()


def acquire_within(lease: DatabaseLease, seconds: float) -> bool:
    """Try as a standby does, every 50 ms, for at most ``seconds`` of real time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if lease.try_acquire():
            return True
        time.sleep(0.05)
    return False


def test_first_instance_acquires_and_the_row_names_it(make_lease, ledger) -> None:
    a = make_lease("engine-a")
    assert ledger.lease_holder("enforcer") is None
    assert a.try_acquire()
    assert a.check() == FencingToken("enforcer", 1)
    holder = ledger.lease_holder("enforcer")
    assert (holder.instance_id, holder.epoch) == ("engine-a", 1)
    assert a.try_acquire()  # held: stays held, same epoch
    assert a.check().epoch == 1


def test_a_second_instance_is_refused_until_the_holder_releases(make_lease, ledger) -> None:
    a, b = make_lease("engine-a"), make_lease("engine-b")
    assert a.try_acquire()
    assert not b.try_acquire()
    assert not b.held
    with pytest.raises(LeaseLost):
        b.check()
    a.release()
    assert b.try_acquire()
    assert b.check() == FencingToken("enforcer", 2)
    assert ledger.lease_holder("enforcer").instance_id == "engine-b"


def test_names_do_not_contend(make_lease) -> None:
    a, b = make_lease("engine-a", name="site-1"), make_lease("engine-b", name="site-2")
    assert a.try_acquire() and b.try_acquire()
    assert a.check() == FencingToken("site-1", 1)
    assert b.check() == FencingToken("site-2", 1)


def test_the_lock_key_depends_on_the_schema_and_the_name() -> None:
    keys = {lock_key(s, n) for s in ("public", "t_1") for n in ("enforcer", "site-2")}
    assert len(keys) == 4
    assert all(-(2**63) <= k < 2**63 for k in keys)


def test_a_holder_whose_session_ends_loses_the_lease_to_a_standby(
    make_lease, ledger, pg_url
) -> None:
    a, b = make_lease("engine-a"), make_lease("engine-b")
    assert a.try_acquire()
    assert not b.try_acquire()
    end_session_of(a, pg_url)
    assert acquire_within(b, 5.0)
    assert b.check().epoch == 2
    with pytest.raises(LeaseLost):
        a.check()  # the old holder finds out at its next check, before any write
    assert not a.held
    assert not a.try_acquire()  # and cannot take it back while b holds it


def test_a_holder_that_stops_renewing_has_its_session_ended(make_lease, clock, ledger) -> None:
    a = make_lease("engine-a", period_s=5.0, stale_after_s=30.0)
    b = make_lease("engine-b", period_s=5.0, stale_after_s=30.0)
    assert a.try_acquire()
    clock.advance(20)
    assert not b.try_acquire()  # silent for 20 s < 30 s: still the holder's
    a.check()  # the check renews (due after period_s / 2)
    clock.advance(25)
    assert not b.try_acquire()  # renewed 25 s ago
    clock.advance(10)
    assert b.try_acquire()  # 35 s without renewal: a hangs; its session is ended
    assert b.check().epoch == 2
    with pytest.raises(LeaseLost):
        a.check()


def test_mark_applied_refuses_a_stale_epoch_and_marks_none(
    make_lease, ledger, make, pg_url
) -> None:
    decision = ledger.propose(make())
    ledger.approve(decision.id, by="analyst")
    a, b = make_lease("engine-a"), make_lease("engine-b")
    assert a.try_acquire()
    stale = a.check()
    end_session_of(a, pg_url)
    assert acquire_within(b, 5.0)
    with pytest.raises(LeaseLost, match="epoch 2"):
        ledger.mark_applied([decision.id], by="enforcer", fence=stale)
    assert ledger.get(decision.id).status is Status.APPROVED
    marked = ledger.mark_applied([decision.id], by="enforcer", fence=b.check())
    assert [d.status for d in marked] == [Status.APPLIED]


def test_sqlite_ledger_lease_is_trivially_held_by_its_one_process(tmp_path, clock) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, clock=clock) as ledger:
        crashed = DatabaseLease(ledger.engine, name="enforcer", instance_id="first", clock=clock)
        assert crashed.try_acquire()
        assert crashed.check() == FencingToken("enforcer", 1)
        # Restarted after a crash, the engine takes the lease at once: nobody else can hold it.
        restarted = DatabaseLease(ledger.engine, name="enforcer", instance_id="again", clock=clock)
        assert restarted.try_acquire()
        assert restarted.check() == FencingToken("enforcer", 2)
        clock.advance(10)
        restarted.check()  # renews the row the status API shows
        holder = ledger.lease_holder("enforcer")
        assert (holder.instance_id, holder.epoch) == ("again", 2)
        assert holder.renewed_at == clock.now()


def test_the_heartbeat_renews_a_holder_whose_loop_is_busy(make_lease, ledger, pg_url) -> None:
    """A long loop step calls no check; the heartbeat thread renews meanwhile (real time)."""
    engine = db.create_engine(pg_url)
    busy = DatabaseLease(
        engine, name="enforcer", instance_id="busy", clock=SystemClock(), period_s=0.2,
        stale_after_s=1.0, heartbeat=True,
    )  # fmt: skip
    try:
        assert busy.try_acquire()
        first = ledger.lease_holder("enforcer").renewed_at
        deadline = time.monotonic() + 5
        while ledger.lease_holder("enforcer").renewed_at == first:
            assert time.monotonic() < deadline, "the heartbeat did not renew"
            time.sleep(0.05)
        standby = make_lease("standby", period_s=0.2, stale_after_s=1.0)
        standby.clock = SystemClock()
        time.sleep(1.2)  # longer than stale_after_s without a single check from the loop
        assert not standby.try_acquire()  # renewed: not stale, its session is left alone
    finally:
        busy.release()
        engine.dispose()
