"""Addresses: a vectorized CIDR matcher and the population subnet of each address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.errors import ConfigError

_V4 = r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$"


def ipv4_to_int(ips: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 value, is-IPv4 mask) for each string; non-IPv4 entries get 0."""
    ips = pc.fill_null(ips, "")
    is_v4 = pc.match_substring_regex(ips, _V4).to_numpy(zero_copy_only=False)
    out = np.zeros(len(ips), dtype=np.uint32)
    if is_v4.any():
        v4 = pc.filter(ips, pa.array(is_v4))
        parts = pc.list_flatten(pc.split_pattern(v4, ".")).cast(pa.uint32())
        octets = parts.to_numpy().reshape(-1, 4).astype(np.uint32)
        out[is_v4] = (
            (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
        )
    return out, is_v4


class CidrSet:
    """A set of IPv4/IPv6 networks with a vectorized ``contains`` over many addresses."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        nets = []
        for text in cidrs:
            try:
                nets.append(ipaddress.ip_network(str(text).strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"not a CIDR: {text!r} ({exc})") from None
        self.v4 = [n for n in nets if n.version == 4]
        self.v6 = [n for n in nets if n.version == 6]
        self._lo = np.array([int(n.network_address) for n in self.v4], dtype=np.uint64)
        self._hi = np.array([int(n.broadcast_address) for n in self.v4], dtype=np.uint64)

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def contains(self, ips: pa.Array) -> np.ndarray:
        """Boolean mask: which addresses fall inside any network of the set."""
        n = len(ips)
        mask = np.zeros(n, dtype=bool)
        if not self or n == 0:
            return mask
        ints, is_v4 = ipv4_to_int(ips)
        if self.v4 and is_v4.any():
            vals = ints[is_v4].astype(np.uint64)[:, None]
            mask[is_v4] = ((vals >= self._lo[None, :]) & (vals <= self._hi[None, :])).any(axis=1)
        if self.v6:
            for i in np.flatnonzero(~is_v4):
                mask[i] = _in_v6(ips[i].as_py(), self.v6)
        return mask


def _in_v6(text: str | None, nets: list) -> bool:
    try:
        addr = ipaddress.ip_address(text or "")
    except ValueError:
        return False
    return addr.version == 6 and any(addr in net for net in nets)


def subnet_keys(ips: pa.Array) -> pa.Array:
    """The population subnet of each address: its /24 (IPv4) or /48 (IPv6), as CIDR text."""
    ips = pc.fill_null(ips, "")
    is_v4 = pc.match_substring_regex(ips, _V4)
    v4_keys = pc.replace_substring_regex(ips, r"\.\d{1,3}$", ".0/24")
    if pc.all(is_v4).as_py() is not False:
        return v4_keys
    out = v4_keys.to_pylist()
    for i in np.flatnonzero(~is_v4.to_numpy(zero_copy_only=False)):
        out[i] = _v6_subnet(out[i])
    return pa.array(out, pa.string())


def _v6_subnet(text: str) -> str:
    try:
        return str(ipaddress.ip_network(f"{text}/48", strict=False))
    except ValueError:
        return text
