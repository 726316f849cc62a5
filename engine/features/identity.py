"""Client identity: who a request came from, resolved once per batch on unique values.

- The log's client IP by default.
- Through a configured trusted proxy, the right-most untrusted ``X-Forwarded-For`` entry
  (entries on the left are client-controlled; ``log-formats.md`` §7).
- CloudFront edge addresses seen as ALB clients are recognised so they are never scored.

IPv4 membership tests are vectorized over unique addresses (uint32 range checks); IPv6
addresses, rare in practice, go through ``ipaddress`` one unique value at a time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.errors import ConfigError
from engine.schema.request import CLIENT_IP, SOURCE, SOURCE_ALB, X_FORWARDED_FOR

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


class ClientResolver:
    """Maps each request row to its client key and flags CloudFront-edge rows."""

    def __init__(self, trusted_proxies: Iterable[str], cloudfront_cidrs: Iterable[str]) -> None:
        self.trusted = CidrSet(trusted_proxies)
        self.edges = CidrSet(cloudfront_cidrs)

    def resolve(self, table: pa.Table) -> tuple[pa.Array, np.ndarray]:
        """(client key per row, is-CloudFront-edge-row mask)."""
        encoded = pc.dictionary_encode(table.column(CLIENT_IP).combine_chunks())
        uniq, idx = encoded.dictionary, encoded.indices
        clients = pc.take(uniq, idx)
        if self.trusted:
            clients = self._through_proxies(table, uniq, idx, clients)
        edge = np.zeros(table.num_rows, dtype=bool)
        if self.edges:
            edge_uniq = self.edges.contains(uniq)
            if edge_uniq.any():
                is_alb = pc.equal(table.column(SOURCE), SOURCE_ALB).to_numpy(zero_copy_only=False)
                edge = edge_uniq[idx.to_numpy(zero_copy_only=False)] & is_alb
        return clients, edge

    def _through_proxies(
        self, table: pa.Table, uniq: pa.Array, idx: pa.Array, clients: pa.Array
    ) -> pa.Array:
        proxied_uniq = self.trusted.contains(uniq)
        if not proxied_uniq.any():
            return clients
        rows = np.flatnonzero(proxied_uniq[idx.to_numpy(zero_copy_only=False)])
        xff = pc.take(table.column(X_FORWARDED_FOR).combine_chunks(), pa.array(rows))
        xff_enc = pc.dictionary_encode(xff)
        resolved = [self._rightmost_untrusted(v) for v in xff_enc.dictionary.to_pylist()]
        picked = pc.take(pa.array(resolved, pa.string()), xff_enc.indices)
        fallback = pc.take(clients, pa.array(rows))
        picked = pc.coalesce(picked, fallback)
        out = clients.to_numpy(zero_copy_only=False).astype(object)
        out[rows] = picked.to_numpy(zero_copy_only=False)
        return pa.array(out, pa.string())

    def _rightmost_untrusted(self, header: str | None) -> str | None:
        if not header:
            return None
        entries = [e.strip() for e in header.split(",") if e.strip()]
        for entry in reversed(entries):
            try:
                addr = str(ipaddress.ip_address(entry))
            except ValueError:
                return None  # garbage in the chain: stop trusting it, keep the proxy address
            if not self.trusted.contains(pa.array([addr]))[0]:
                return addr
        return None
