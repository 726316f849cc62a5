"""Synthetic but realistic client addresses: varied /16s, exclusive /24s, crawler networks.

Benign users come from "residential-like" /16s, attack infrastructure mostly from
"hosting-like" /16s, and verified crawlers only from their publishers' networks. Pools never
overlap crawler networks, private, documentation or other reserved space, and every address
is handed out at most once.
"""

from __future__ import annotations

import ipaddress

import numpy as np

# First octets of public unicast space typical of access ISPs and of hosting providers.
RESIDENTIAL_FIRST = (
    24,
    31,
    37,
    46,
    73,
    76,
    77,
    78,
    79,
    81,
    82,
    84,
    86,
    88,
    90,
    92,
    94,
    98,
    109,
    151,
    176,
    178,
    186,
    188,
    189,
    201,
)
HOSTING_FIRST = (
    5,
    23,
    45,
    51,
    62,
    89,
    91,
    103,
    104,
    107,
    139,
    141,
    146,
    154,
    159,
    167,
    185,
    193,
    194,
    195,
    212,
    217,
)


class AddressAllocator:
    """Hands out unique IPv4/IPv6 addresses from seeded pools."""

    def __init__(self, rng: np.random.Generator, crawler_networks: list[str]) -> None:
        self._rng = rng
        nets = [ipaddress.ip_network(n) for n in crawler_networks]
        self._crawler_nets = [n for n in nets if n.version == 4]  # pools are IPv4 /24s
        self._used_ips: set[str] = set()
        self._exclusive_24s: set[tuple[int, int, int]] = set()
        self._shared_24s: set[tuple[int, int, int]] = set()
        self._shared_list: list[tuple[int, int, int]] = []  # in allocation order (determinism)

    def _ok_24(self, key: tuple[int, int, int]) -> bool:
        net = ipaddress.ip_network(f"{key[0]}.{key[1]}.{key[2]}.0/24")
        if not net.is_global:
            return False
        return not any(net.overlaps(c) for c in self._crawler_nets)

    def _new_24(self, pool: tuple[int, ...], exclusive: bool) -> tuple[int, int, int]:
        while True:
            first = int(pool[self._rng.integers(len(pool))])
            key = (first, int(self._rng.integers(0, 256)), int(self._rng.integers(0, 256)))
            if key in self._exclusive_24s or not self._ok_24(key):
                continue
            if exclusive and key in self._shared_24s:
                continue
            if exclusive:
                self._exclusive_24s.add(key)
            elif key not in self._shared_24s:
                self._shared_24s.add(key)
                self._shared_list.append(key)
            return key

    def _host_in(self, key: tuple[int, int, int]) -> str | None:
        for _ in range(64):
            ip = f"{key[0]}.{key[1]}.{key[2]}.{int(self._rng.integers(1, 255))}"
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return ip
        for d in range(1, 255):  # a dense /24: take the first free host
            ip = f"{key[0]}.{key[1]}.{key[2]}.{d}"
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return ip
        return None

    def residential(self, n: int, ipv6_fraction: float = 0.0, reuse: float = 0.0) -> list[str]:
        """``n`` addresses in residential /24s; with probability ``reuse`` an address joins a
        /24 already holding others (neighbours on one ISP subnet), else a fresh one."""
        out = []
        for _ in range(n):
            if ipv6_fraction and self._rng.random() < ipv6_fraction:
                out.append(self.ipv6())
                continue
            ip = None
            while ip is None:
                if self._shared_list and self._rng.random() < reuse:
                    key = self._shared_list[int(self._rng.integers(len(self._shared_list)))]
                else:
                    key = self._new_24(RESIDENTIAL_FIRST, exclusive=False)
                ip = self._host_in(key)
            out.append(ip)
        return out

    def spread(self, n: int, pool: str = "hosting") -> list[str]:
        """``n`` addresses each in its own fresh /24 (a campaign spread across many /24s)."""
        first = HOSTING_FIRST if pool == "hosting" else RESIDENTIAL_FIRST
        return [self._host_in(self._new_24(first, exclusive=True)) or "" for _ in range(n)]

    def concentrated(self, n: int, subnets: int) -> list[str]:
        """``n`` addresses packed into ``subnets`` exclusive hosting /24s (≤ 254 per /24)."""
        subnets = max(subnets, -(-n // 254))
        keys = [self._new_24(HOSTING_FIRST, exclusive=True) for _ in range(subnets)]
        out = []
        for i in range(n):
            ip = self._host_in(keys[i % subnets])
            if ip is None:
                raise ValueError(f"cannot fit {n} addresses into {subnets} /24s")
            out.append(ip)
        return out

    def in_network(self, network: str) -> str:
        net = ipaddress.ip_network(network)
        while True:
            offset = int(self._rng.integers(1, max(2, net.num_addresses - 1)))
            ip = str(net.network_address + offset)
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return ip

    def ipv6(self) -> str:
        while True:
            words = [
                0x2A02,
                int(self._rng.integers(0x0100, 0x8000)),
                int(self._rng.integers(0, 0x10000)),
                int(self._rng.integers(0, 0x10000)),
                0,
                0,
                0,
                int(self._rng.integers(1, 0x10000)),
            ]
            ip = str(ipaddress.IPv6Address(":".join(f"{w:x}" for w in words)))
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return ip


def address_in_64(rng: np.random.Generator, net: int, alloc) -> str:
    """A fresh random address (random interface id) in the /64 ``net``, not yet handed out."""
    while True:
        iid = int(rng.integers(1, 2**62)) | (int(rng.integers(0, 4)) << 62)  # random IID
        ip = str(ipaddress.IPv6Address(net | iid))
        if ip not in alloc._used_ips:
            alloc._used_ips.add(ip)
            return ip
