"""One address definition: scalar rules, their column forms, and the CIDR matcher."""

from __future__ import annotations

import ipaddress

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import netaddr
from engine.core.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("  192.0.2.7\t", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4-mapped address is the IPv4 address
        ("::FFFF:c000:207", "192.0.2.7"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::1.2.3.4", "::102:304"),  # IPv4-compatible (deprecated) stays IPv6
        ("192.0.2.7/32", "192.0.2.7"),
        ("192.0.2.0/24", "192.0.2.0/24"),
        ("::ffff:192.0.2.0/120", "192.0.2.0/24"),  # a mapped network is the IPv4 network
        ("2001:db8::/48", "2001:db8::/48"),
    ],
)
def test_clients_are_written_one_way(text, canonical):
    assert netaddr.normalize_client(text) == canonical


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("fe80::1%eth0", "scoped"),
        ("fe80::1%eth0/128", "scoped"),
        ("::ffff:1.2.3.4%1", "scoped"),
        ("192.0.2.256", "not an IP address"),
        ("300.1.1.1", "not an IP address"),
        ("::ffff:300.1.1.1", "not an IP address"),
        ("010.0.0.1", "not an IP address"),  # leading zero: octal to some readers
        ("1.2.3", "not an IP address"),
        ("X.X.X.X", "not an IP address"),
        ("", "not an IP address"),
        ("192.0.2.7/24", "host bits"),
        ("0.0.0.0/0", "/0"),
        ("::/0", "/0"),
        ("192.0.2.0/33", "longer"),
        ("192.0.2.0/-1", "decimal"),
        ("192.0.2.0/255.255.255.0", "decimal"),
    ],
)
def test_refused_clients_say_why(text, why):
    with pytest.raises(netaddr.AddressError, match=why):
        netaddr.normalize_client(text)


def test_configured_lists_clear_host_bits_and_refuse_what_the_rules_refuse():
    first = int(ipaddress.IPv4Address("10.1.0.0"))
    assert netaddr.network_range("10.1.2.3/16", strict=False) == (4, first, first + 65535)
    with pytest.raises(ConfigError, match="scoped"):
        netaddr.CidrSet(["fe80::/10", "fe80::1%eth0"])
    with pytest.raises(ConfigError, match="not an IP"):
        netaddr.CidrSet(["not-a-cidr"])


def test_coverage_counts_the_union_per_family():
    halves = [netaddr.network_range(t) for t in ("0.0.0.0/1", "128.0.0.0/1")]
    assert netaddr.coverage(halves) == {4: 1.0, 6: 0.0}
    nested = [netaddr.network_range(t) for t in ("10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32")]
    assert netaddr.coverage(nested) == {4: 1 / 256, 6: 2.0**-32}


def test_subnet_keys_and_cidr_membership():
    keys = netaddr.subnet_keys(pa.array(["192.0.2.77", "2001:db8:1:2::5", "junk"])).to_pylist()
    assert keys == ["192.0.2.0/24", "2001:db8:1::/48", "junk"]
    nets = netaddr.CidrSet(["192.0.2.0/25", "2001:db8::/32"])
    got = nets.contains(pa.array(["192.0.2.1", "192.0.2.200", "2001:db8::1", "::1", None]))
    assert got.tolist() == [True, False, True, False, False]
    # the mapped spelling of an address inside the set is inside the set
    assert nets.contains(pa.array(["::ffff:192.0.2.9", "fe80::1%eth0"])).tolist() == [True, False]


# --- the column paths agree with the scalar rule ---------------------------------------------
_v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
_v6 = st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
_mapped = st.integers(0, 2**32 - 1).map(lambda i: f"::ffff:{ipaddress.IPv4Address(i)}")
_octet = st.integers(0, 400).map(str) | st.sampled_from(["00", "01", "099", ""])
_octets = st.lists(_octet, min_size=3, max_size=5).map(".".join)
_suffix = st.sampled_from(["", " ", "%eth0", "%1", "]", "[", "/32", "0", ".", ":"])
_near_miss = st.tuples(st.one_of(_v4, _v6, _mapped), _suffix).map("".join)
_ip_alphabet = st.text("0123456789abcdefABCDEF:.%[]/ \t", max_size=45)
addresses = st.one_of(_v4, _v6, _mapped, _octets, _near_miss, _ip_alphabet, st.text(max_size=20))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(addresses, st.none()), max_size=30))
def test_column_normalisation_agrees_with_the_scalar_rule(values):
    got = netaddr.normalize_column(pa.array(values, pa.string())).to_pylist()
    want = []
    for v in values:
        try:
            want.append(None if v is None else netaddr.normalize_address(v))
        except netaddr.AddressError:
            want.append(None)
    assert got == want
    chunked = pa.chunked_array(
        [pa.array(values[:3], pa.string()), pa.array(values[3:], pa.string())]
    )
    assert netaddr.normalize_column(chunked).to_pylist() == want


def _as_ipv4(addr):
    """The oracle's form of the mapping rule: ``::ffff:a.b.c.d`` is ``a.b.c.d``."""
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _net_as_ipv4(net):
    """... and a network inside ``::ffff:0:0/96`` is the IPv4 network it maps."""
    if net.version == 6 and net.prefixlen >= 96 and net.network_address.ipv4_mapped is not None:
        return ipaddress.IPv4Network((net.network_address.ipv4_mapped, net.prefixlen - 96))
    return net


_networks = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 32)).map(
        lambda t: ipaddress.IPv4Network((t[0], t[1]), strict=False)
    ),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(1, 128)).map(
        lambda t: ipaddress.IPv6Network((t[0], t[1]), strict=False)
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(addresses, st.none()), max_size=40),
    networks=st.lists(_networks, max_size=5),
    edges=st.lists(st.integers(0, 4), max_size=10),
)
def test_cidr_matching_agrees_with_ipaddress(values, networks, edges):
    for i in edges:  # addresses at the very edges of the networks, so matches occur
        if networks:
            net = networks[i % len(networks)]
            values += [str(net.network_address), str(net.broadcast_address)]
            values += [str(net.network_address - 1)] if int(net.network_address) else []
            values += [f"::ffff:{net.network_address}"] if net.version == 4 else []
    got = netaddr.CidrSet(str(n) for n in networks).contains(pa.array(values, pa.string()))
    want = []
    for text in values:
        try:
            netaddr.normalize_address(text or "")  # what the rules refuse matches nothing
            addr = _as_ipv4(ipaddress.ip_address(text.strip().strip("[]")))
        except (netaddr.AddressError, ValueError):
            want.append(False)
            continue
        nets = [_net_as_ipv4(n) for n in networks]
        want.append(any(addr.version == n.version and addr in n for n in nets))
    assert got.tolist() == want
