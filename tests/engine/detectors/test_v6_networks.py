"""IPv6 /56 aggregation: a stuffer rotating over the /64s of its own /56 becomes one /56
decision; households using several /64s, and /56s where benign /64s are active beside the
flagged ones, keep per-/64 answers."""

from __future__ import annotations

import ipaddress

from engine.detectors.networks import v6_network
from engine.pipeline import AnalysisConfig
from tests.support.detectors import background, run
from tests.support.traffic import BROWSER_UAS, Traffic

PER_64 = {"features": {"ipv6_client_prefix": 64}}


def net64(prefix: str, k: int) -> str:
    return str(ipaddress.IPv6Network(f"{prefix}:{k:x}::/64"))


def stuff(tr: Traffic, net64: str, t0: float, n: int = 40) -> None:
    """``n`` failing logins from ``net64``, every one from a fresh address of it."""
    base = int(ipaddress.IPv6Network(net64).network_address)
    for i in range(n):
        ip = str(ipaddress.IPv6Address(base + int(tr.rng.integers(1, 2**62))))
        tr.add(ip, t0 + 5 * i, "/login", method="POST", status=401)


def test_stuffer_over_four_64s_of_its_56_is_one_56_decision():
    tr = background(Traffic(31))
    for k in range(4):
        stuff(tr, f"2001:db8:aa00:{k:x}::/64", 200 + 7 * k)
    _, by = run(tr, AnalysisConfig.model_validate(PER_64))
    assert set(by) == {"2001:db8:aa00::/56"}
    d = by["2001:db8:aa00::/56"]
    assert d.action.value == "block"
    assert "4 of the 4 /64s active in 2001:db8:aa00::/56 flagged" in d.reasons[0]
    without = AnalysisConfig.model_validate({**PER_64, "v6_networks": {"enabled": False}})
    _, by = run(tr, without)
    assert set(by) == {net64("2001:db8:aa00", k) for k in range(4)}


def test_benign_64s_beside_the_flagged_ones_keep_per_64_decisions():
    tr = background(Traffic(32))
    for k in range(3):
        stuff(tr, f"2001:db8:bb00:{k:x}::/64", 200 + 7 * k)
    for k in range(3, 5):  # the same /56, two /64s of people browsing
        for d in range(3):
            tr.browser(f"2001:db8:bb00:{k:x}::{d + 1}", 0, 1200, pages=10, ua=BROWSER_UAS[d])
    _, by = run(tr, AnalysisConfig.model_validate(PER_64))
    assert set(by) == {net64("2001:db8:bb00", k) for k in range(3)}


def test_household_on_several_64s_is_not_flagged():
    tr = background(Traffic(33))
    for k in range(4):
        for d in range(3):
            tr.browser(f"2001:db8:cc00:{k:x}::{d + 1}", 0, 1200, pages=12, ua=BROWSER_UAS[d + k])
    _, by = run(tr, AnalysisConfig.model_validate(PER_64))
    assert not by


def test_v6_network_of_addresses_and_networks():
    net = int(ipaddress.IPv6Address("2001:db8:aa00::"))
    assert v6_network("2001:db8:aa00:3f::1", 56) == net
    assert v6_network("2001:db8:aa00:3::/64", 56) == net
    assert v6_network("2001:db8:aa00::/48", 56) is None  # wider than the /56: not inside one
    assert v6_network("198.51.100.7", 56) is None
    assert v6_network("not an address", 56) is None
