"""Client IP validation and normalisation, on distinct values only.

Logs repeat the same clients many times, so the column is dictionary-encoded and only the
distinct strings are checked. Canonical dotted-quad IPv4 passes a vectorised regex untouched;
everything else (IPv6, odd IPv4 spellings, garbage such as the anonymised ``X.X.X.X``) goes
through :mod:`ipaddress` — still once per distinct value, never per row. IPv6 comes out
compressed and lower case, the same text ``engine.schema.decision.normalize_client`` writes.
"""

from __future__ import annotations

import functools
import ipaddress

import pyarrow as pa
import pyarrow.compute as pc

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
CANONICAL_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


@functools.lru_cache(maxsize=1 << 16)  # the same odd spellings recur block after block
def _normalize_one(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def normalize_ips(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Normalised text of each IP, null where the value is not an IP address."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values)
    dictionary = values.dictionary
    if dictionary.type != pa.string():
        dictionary = dictionary.cast(pa.string())
    canonical = pc.fill_null(pc.match_substring_regex(dictionary, CANONICAL_IPV4), False)
    if not pc.all(canonical).as_py():
        odd = pc.indices_nonzero(pc.invert(canonical))
        fixed = [_normalize_one(v) for v in pc.take(dictionary, odd).to_pylist()]
        mask = pc.invert(canonical)
        dictionary = pc.replace_with_mask(dictionary, mask, pa.array(fixed, pa.string()))
    return pc.take(dictionary, values.indices)
