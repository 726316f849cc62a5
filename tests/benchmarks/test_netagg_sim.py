"""The simulator's network-aggregate populations (issue 11): CGNAT app fleets, IPv6 /56
sites and a stuffer rotating over the /64s of its /56 — shaped as the benchmark needs them."""

from __future__ import annotations

import ipaddress
from collections import defaultdict

import pyarrow.compute as pc
import pytest

from engine.demo.simulator import preset, simulate
from engine.demo.simulator.simulate import L_CAMPAIGN, L_CLIENT, L_KIND, L_USERS
from engine.schema import request as rq

WAVE = dict(cgnat_addresses=6, cgnat_per_24=3, cgnat_phones=(150, 200), ipv6_site56s=4,
            ipv6_56_rotators=2)  # fmt: skip


@pytest.fixture(scope="module")
def sim():
    return simulate(preset("tiny", minutes=15, second_wave=WAVE), 4)


def rows_of(sim, kind: str):
    labels = sim.labels.filter(pc.equal(sim.labels[L_KIND], kind))
    req = sim.requests.filter(pc.is_in(sim.requests[rq.CLIENT_IP], value_set=labels[L_CLIENT]))
    return labels, req


def test_cgnat_pools_are_carrier_addresses_with_many_phones_polling_one_endpoint(sim):
    labels, req = rows_of(sim, "cgnat_pool")
    assert labels.num_rows == 6
    assert min(labels[L_USERS].to_pylist()) >= 150  # phones behind each address
    blocks = {ip.rsplit(".", 1)[0] for ip in labels[L_CLIENT].to_pylist()}
    assert len(blocks) == 2  # contiguous public pools, three addresses per carrier /24
    for ip in labels[L_CLIENT].to_pylist():
        mine = req.filter(pc.equal(req[rq.CLIENT_IP], ip))
        assert mine.num_rows / 15 > 240  # above the per-address flood threshold
        agents = set(mine[rq.USER_AGENT].to_pylist())
        assert len(agents) >= 30 and all(a.startswith("ExampleShop/") for a in agents)
        paths = pc.value_counts(mine[rq.PATH]).to_pylist()
        top = max(paths, key=lambda p: p["counts"])
        assert top["values"] == "/api/v2/feed" and top["counts"] / mine.num_rows > 0.8
        assert pc.sum(pc.greater_equal(mine[rq.STATUS], 400)).as_py() / mine.num_rows < 0.05


def test_56_rotator_spreads_fresh_addresses_over_several_64s_of_one_56(sim):
    labels, req = rows_of(sim, "ipv6_56_rotating_stuffing")
    by_campaign = defaultdict(list)
    for r in labels.to_pylist():
        by_campaign[r[L_CAMPAIGN]].append(ipaddress.IPv6Address(r[L_CLIENT]))
    assert len(by_campaign) == 2
    for addrs in by_campaign.values():
        assert len({int(a) >> 72 for a in addrs}) == 1  # one /56
        assert len({int(a) >> 64 for a in addrs}) >= 4  # several of its /64s
    assert req.num_rows <= 2 * labels.num_rows  # one or two attempts per address
    assert set(req[rq.PATH].to_pylist()) == {"/login"}


def test_56_sites_browse_from_two_to_four_64s(sim):
    labels, _ = rows_of(sim, "ipv6_site56")
    sites = defaultdict(set)
    for ip in labels[L_CLIENT].to_pylist():
        a = int(ipaddress.IPv6Address(ip))
        sites[a >> 72].add(a >> 64)
    assert len(sites) == 4 and all(2 <= len(s) <= 4 for s in sites.values())


def test_the_presets_carry_cgnat_fleets_and_tiny_stays_as_it_was():
    assert preset("small").second_wave.cgnat_addresses > 0
    assert preset("full").second_wave.cgnat_addresses > 0
    assert preset("norule").second_wave.cgnat_addresses > 0
    assert preset("tiny").second_wave.cgnat_addresses == 0
