"""Client identity: who a request came from, resolved once per batch on unique values.

- The log's client IP by default.
- Through a configured trusted proxy, the right-most untrusted ``X-Forwarded-For`` entry
  (entries on the left are client-controlled; ``log-formats.md`` §7). Every XFF header of a
  request counts, in order (the WAF parser joins them), so a client-sent ``X-Forwarded-For:
  8.8.8.8`` before the proxy's own header names nobody.
- A trusted proxy is never a client: a proxied row whose chain is missing, holds only
  trusted addresses, or reaches an entry the address rules refuse before an untrusted one
  has *no client identity*. It is dropped from the features and counted by reason
  (``NO_IDENTITY_REASONS``), never attributed to the proxy or to a guess.
- CloudFront edge addresses seen as ALB clients are recognised so they are never scored
  (ALB logs carry no X-Forwarded-For: behind CloudFront they cannot name the viewer).
- CloudFront's published ranges are trusted proxies without any configuration: a WAF row
  whose client is a CloudFront address takes its viewer from X-Forwarded-For (CloudFront
  appends the viewer as the last entry), and is counted as ``forwarded`` so the compiler
  can match the forwarded address instead of the edge.

Membership tests are ``engine.core.netaddr.CidrSet`` lookups over unique values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.netaddr import (
    AddressError,
    CidrSet,
    address_or_none,
    network_text,
    parse_address,
)
from engine.schema.request import (
    CLIENT_IP,
    SOURCE,
    SOURCE_ALB,
    SOURCE_CLOUDFRONT,
    X_FORWARDED_FOR,
)

XFF_MISSING = "xff_missing"  # a proxied request without any X-Forwarded-For entry
XFF_UNPARSEABLE = "xff_unparseable"  # the walk from the right met a non-address first
XFF_ONLY_PROXIES = "xff_only_proxies"  # every entry is a trusted proxy
NO_IDENTITY_REASONS = (XFF_MISSING, XFF_UNPARSEABLE, XFF_ONLY_PROXIES)


class Resolved(NamedTuple):
    """Who each row of a batch came from. Edge rows and rows without a client identity (by
    reason) must not be scored: their ``clients`` entry is meaningless."""

    clients: pa.Array
    edge: np.ndarray
    no_identity: dict[str, np.ndarray]
    forwarded: np.ndarray  # rows whose client was read from X-Forwarded-For behind CloudFront


def v6_networks(clients: pa.Array, prefix: int) -> pa.Array:
    """Client keys with each IPv6 address replaced by its /``prefix`` network (IPv4 kept)."""
    enc = pc.dictionary_encode(clients)
    uniq = enc.dictionary.to_pylist()
    if not any(u and ":" in u for u in uniq):
        return clients
    keys = []
    for u in uniq:
        if u and ":" in u:
            try:
                version, value = parse_address(u)
            except AddressError:  # not an address: its own key, as without the option
                keys.append(u)
                continue
            if version == 6:
                host = 128 - prefix
                u = network_text(version, value >> host << host, prefix)
        keys.append(u)
    return pc.take(pa.array(keys, pa.string()), enc.indices)


class ClientResolver:
    """Maps each request row to its client key and flags CloudFront-edge rows."""

    def __init__(
        self,
        trusted_proxies: Iterable[str],
        cloudfront_cidrs: Iterable[str],
        ipv6_prefix: int | None = None,
    ) -> None:
        self.ipv6_prefix = ipv6_prefix
        cloudfront = list(cloudfront_cidrs)
        self.proxies = CidrSet(trusted_proxies)
        self.edges = CidrSet(cloudfront)
        self.trusted = CidrSet([*trusted_proxies, *cloudfront])  # every hop a chain may pass

    def resolve(self, table: pa.Table) -> Resolved:
        """The client key of every row, its CloudFront-edge rows and its unidentified rows."""
        encoded = pc.dictionary_encode(table.column(CLIENT_IP).combine_chunks())
        uniq, idx = encoded.dictionary, encoded.indices
        at = idx.to_numpy(zero_copy_only=False)
        clients = pc.take(uniq, idx)
        n = table.num_rows
        edge, forwarded = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        proxied = self.proxies.contains(uniq)[at] if self.proxies else np.zeros(n, dtype=bool)
        if self.edges:
            edge_uniq = self.edges.contains(uniq)
            if edge_uniq.any():
                source = table.column(SOURCE)
                is_alb = pc.equal(source, SOURCE_ALB).to_numpy(zero_copy_only=False)
                is_cf = pc.equal(source, SOURCE_CLOUDFRONT).to_numpy(zero_copy_only=False)
                at_edge = edge_uniq[at] & ~is_cf  # a CloudFront log's own c-ip is a viewer
                edge = at_edge & is_alb  # ALB logs carry no X-Forwarded-For
                forwarded = at_edge & ~is_alb  # WAF logs: the viewer is in X-Forwarded-For
                proxied |= forwarded
        unknown: dict[str, np.ndarray] = {}
        if proxied.any():
            clients, unknown = self._through_proxies(table, np.flatnonzero(proxied), clients)
            for rows in unknown.values():
                forwarded &= ~rows
        if self.ipv6_prefix is not None and self.ipv6_prefix < 128:
            clients = v6_networks(clients, self.ipv6_prefix)
        return Resolved(clients, edge, unknown, forwarded)

    def _through_proxies(
        self, table: pa.Table, rows: np.ndarray, clients: pa.Array
    ) -> tuple[pa.Array, dict[str, np.ndarray]]:
        xff = pc.take(table.column(X_FORWARDED_FOR).combine_chunks(), pa.array(rows))
        xff_enc = pc.dictionary_encode(xff, null_encoding="encode")
        picked_uniq, reason_uniq = self.resolve_chains(xff_enc.dictionary.to_pylist())
        at = xff_enc.indices.to_numpy(zero_copy_only=False)
        out = clients.to_numpy(zero_copy_only=False).astype(object)
        out[rows] = np.asarray(picked_uniq, dtype=object)[at]
        reasons = np.asarray(reason_uniq, dtype=object)[at]
        unknown = {}
        for reason in NO_IDENTITY_REASONS:
            hit = reasons == reason
            if hit.any():
                mask = np.zeros(len(out), dtype=bool)
                mask[rows[hit]] = True
                unknown[reason] = mask
        return pa.array(out, pa.string()), unknown

    def resolve_chains(
        self, headers: list[str | None]
    ) -> tuple[list[str | None], list[str | None]]:
        """Per X-Forwarded-For value: (the right-most untrusted address, None) or
        (None, why there is no client identity). One trust lookup for all entries."""
        chains = [[e.strip() for e in (h or "").split(",") if e.strip()] for h in headers]
        entries = [address_or_none(e) for chain in chains for e in chain]
        trusted = self.trusted.contains(pa.array(entries, pa.string()))
        picked: list[str | None] = []
        reasons: list[str | None] = []
        end = 0
        for chain in chains:
            start, end = end, end + len(chain)
            client, reason = None, XFF_ONLY_PROXIES if chain else XFF_MISSING
            for i in range(end - 1, start - 1, -1):
                if entries[i] is None:
                    reason = XFF_UNPARSEABLE  # stop trusting the chain here
                    break
                if not trusted[i]:
                    client, reason = entries[i], None
                    break
            picked.append(client)
            reasons.append(reason)
        return picked, reasons
