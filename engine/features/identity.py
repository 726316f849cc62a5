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

from engine.core.netaddr import CidrSet
from engine.schema.request import CLIENT_IP, SOURCE, SOURCE_ALB, X_FORWARDED_FOR


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
