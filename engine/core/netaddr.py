"""Addresses: the one definition of a client address and a network, for the whole engine.

The rules (parsers, decisions, the allowlist, the API and the compiler all use them):

- An address is what ``inet_pton`` reads: a dotted-quad IPv4 address (four decimal octets
  0–255, no leading zeros — glibc, musl and the BSDs all refuse them, and a test pins it) or
  an IPv6 address in RFC 4291 text form. Surrounding whitespace and the brackets of
  ``[2001:db8::1]`` are tolerated.
- A scoped IPv6 address (``fe80::1%eth0``) is refused: a zone id names an interface of some
  host on the path, not a client, and WAF IP sets cannot hold it.
- An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) *is* the IPv4 address ``a.b.c.d``, and a
  network inside ``::ffff:0:0/96`` is the IPv4 network it maps, so an allowlisted IPv4 client
  is never blocked through its mapped spelling.
- Canonical text: the dotted quad; IPv6 compressed lower case (what ``ipaddress`` prints).
- A network is ``address/prefix`` with a decimal prefix length. Decisions are strict (host
  bits clear, no /0, a full-length prefix is written as the bare address); configured lists
  (trusted proxies, allowlists) clear host bits instead.

Scalar functions answer for one text; ``normalize_column`` and ``CidrSet`` apply the same
rules to Arrow columns, converting each *distinct* value once: canonical IPv4 text goes
through a vectorized regex and integer path, everything else through the scalar rule.
``CidrSet.contains`` is a ``searchsorted`` over merged integer ranges per family.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.errors import ConfigError

BITS = {4: 32, 6: 128}
_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96 holds the IPv4-mapped addresses
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
CANONICAL_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"  # exactly the canonical texts
_inet_pton, _AF_INET, _AF_INET6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6
_V6_KEY = np.dtype([("hi", ">u8"), ("lo", ">u8")])  # 128-bit keys that sort as numbers

NetRange = tuple[int, int, int]  # (version, first address, last address)


class AddressError(ValueError):
    """Text that is not a usable client address or network; the message says why."""


# --- scalar rules ----------------------------------------------------------------------------
def _parse(s: str, text: str) -> tuple[int, int, int]:
    """(version, integer, full prefix length) of the stripped address text ``s`` (``text`` as
    given, for the message); AddressError if refused. One tuple per call: the compiler parses
    every decided address, and each extra container is garbage-collector work."""
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    v6 = ":" in s
    if v6 and "%" in s:
        raise AddressError(f"{text!r} is a scoped (zone-id) address, which names no client")
    try:
        value = int.from_bytes(_inet_pton(_AF_INET6 if v6 else _AF_INET, s), "big")
    except (OSError, ValueError):  # ValueError: NUL or non-ASCII characters
        raise AddressError(f"{text!r} is not an IP address") from None
    if v6 and value >> 32 != 0xFFFF:
        return 6, value, 128
    return 4, value & 0xFFFFFFFF, 32  # an IPv4-mapped address is its IPv4 address


def parse_address(text: str) -> tuple[int, int]:
    """(version, integer) of an address under the rules above; raises ``AddressError``."""
    if not isinstance(text, str):
        raise AddressError(f"{text!r} is not text")
    version, value, _ = _parse(text.strip(), text)
    return version, value


def address_text(version: int, value: int) -> str:
    """Canonical text of an address."""
    if version == 4:
        return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"
    return str(ipaddress.IPv6Address(value))


def normalize_address(text: str) -> str:
    """Canonical text of an address; raises ``AddressError``."""
    return address_text(*parse_address(text))


@functools.lru_cache(maxsize=1 << 16)  # the same odd spellings recur block after block
def address_or_none(text: str | None) -> str | None:
    """Canonical text of an address, or None when the rules refuse it (columns use this)."""
    if text is None:
        return None
    try:
        return normalize_address(text)
    except AddressError:
        return None


def parse_network(text: str, *, strict: bool = True) -> tuple[int, int, int]:
    """(version, first address, prefix length) of an address or CIDR text.

    A bare address is a full-length network. ``strict`` refuses host bits; otherwise they are
    cleared. A /0 is returned as such: callers that must refuse it do (``normalize_client``).
    """
    if not isinstance(text, str):
        raise AddressError(f"{text!r} is not text")
    s = text.strip()
    if "/" not in s:
        return _parse(s, text)
    addr, _, prefix = s.partition("/")
    version, value, _ = _parse(addr, text)
    if not (prefix.isascii() and prefix.isdigit()) or len(prefix) > 3:
        raise AddressError(f"{text!r}: the prefix length must be a decimal number")
    plen = int(prefix)
    if version == 4 and ":" in addr:  # ::ffff:a.b.c.d/p: the IPv4 network /p-96 ...
        if plen >= 96:
            plen -= 96
        else:  # ... or an IPv6 network wider than the mapped block
            version, value = 6, _MAPPED | value
    if plen > BITS[version]:
        raise AddressError(f"{text!r}: prefix /{plen} is longer than IPv{version} allows")
    host = (1 << (BITS[version] - plen)) - 1
    if value & host:
        if strict:
            raise AddressError(f"{text!r} has host bits set")
        value &= ~host
    return version, value, plen


def network_text(version: int, start: int, prefixlen: int) -> str:
    """A network as WAF writes it, always with its prefix (``192.0.2.7/32``)."""
    return f"{address_text(version, start)}/{prefixlen}"


def network_range(text: str, *, strict: bool = True) -> NetRange:
    """(version, first, last) of an address or CIDR text; raises ``AddressError``."""
    version, start, plen = parse_network(text, strict=strict)
    return version, start, start + (1 << (BITS[version] - plen)) - 1


def normalize_client(text: str) -> str:
    """Canonical text of a decided client: a bare address, or a CIDR with host bits clear.

    ``"::ffff:192.0.2.7"`` → ``"192.0.2.7"``, ``"2001:DB8::/48"`` → ``"2001:db8::/48"``,
    ``"192.0.2.7/32"`` → ``"192.0.2.7"``; a /0, a scoped address or garbage is refused.
    """
    version, start, plen = parse_network(text, strict=True)
    if plen == 0:
        raise AddressError(f"{text!r}: a /0 network would match everyone")
    if plen == BITS[version]:
        return address_text(version, start)
    return network_text(version, start, plen)


def merge_ranges(ranges: Iterable[NetRange]) -> dict[int, list[tuple[int, int]]]:
    """Per family, the sorted, disjoint, non-adjacent (first, last) ranges covering ``ranges``."""
    out: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for version, first, last in sorted(ranges):
        merged = out[version]
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return out


def coverage(ranges: Iterable[NetRange]) -> dict[int, float]:
    """Share of each family's address space the union of ``ranges`` covers (0..1)."""
    return {
        version: sum(last - first + 1 for first, last in spans) / 2 ** BITS[version]
        for version, spans in merge_ranges(ranges).items()
    }


# --- columns -----------------------------------------------------------------------------------
def _dictionary(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values)
    if values.dictionary.type != pa.string():
        values = pa.DictionaryArray.from_arrays(values.indices, values.dictionary.cast(pa.string()))
    return values


def normalize_column(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Canonical text of each address, null where the rules refuse the value."""
    values = _dictionary(values)
    dictionary = values.dictionary
    canonical = pc.fill_null(pc.match_substring_regex(dictionary, CANONICAL_IPV4), False)
    if not pc.all(canonical).as_py():
        odd = pc.invert(canonical)
        fixed = [address_or_none(v) for v in pc.filter(dictionary, odd).to_pylist()]
        dictionary = pc.replace_with_mask(dictionary, odd, pa.array(fixed, pa.string()))
    return pc.take(dictionary, values.indices)


def _keys(dictionary: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(version, IPv4 value, IPv6 key) of each distinct text; version 0 where refused."""
    n = len(dictionary)
    version = np.zeros(n, dtype=np.int8)
    v4 = np.zeros(n, dtype=np.uint64)
    v6 = np.zeros(n, dtype=_V6_KEY)
    canonical = pc.fill_null(pc.match_substring_regex(dictionary, CANONICAL_IPV4), False)
    fast = canonical.to_numpy(zero_copy_only=False)
    if fast.any():
        quads = pc.list_flatten(pc.split_pattern(pc.filter(dictionary, canonical), "."))
        octets = quads.cast(pa.uint64()).to_numpy().reshape(-1, 4)
        v4[fast] = octets[:, 0] << 24 | octets[:, 1] << 16 | octets[:, 2] << 8 | octets[:, 3]
        version[fast] = 4
    for i in np.flatnonzero(~fast):
        text = dictionary[i].as_py()
        try:
            ver, value = parse_address(text)
        except AddressError:
            continue
        version[i] = ver
        if ver == 4:
            v4[i] = value
        else:
            v6[i] = _v6_key(value)
    return version, v4, v6


def _v6_key(value: int) -> tuple[int, int]:
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def _sides(spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    return [first for first, _ in spans], [last for _, last in spans]


def _in_spans(values: np.ndarray, firsts: np.ndarray, lasts: np.ndarray) -> np.ndarray:
    """Which values lie in one of the sorted disjoint [first, last] spans."""
    i = np.searchsorted(firsts, values, side="right") - 1  # the last span starting at or before
    # ... and the value is not past its end: exactly i spans end before it
    return (i >= 0) & (np.searchsorted(lasts, values, side="left") == i)


class CidrSet:
    """A set of IPv4/IPv6 networks with a vectorized ``contains`` over address columns.

    Built from CIDR or address texts (host bits are cleared, so ``10.1.2.3/16`` is
    ``10.1.0.0/16``); a text the address rules refuse raises ``ConfigError``.
    """

    def __init__(self, cidrs: Iterable[str]) -> None:
        ranges = []
        for text in cidrs:
            try:
                ranges.append(network_range(str(text), strict=False))
            except AddressError as exc:
                raise ConfigError(f"not a CIDR: {exc}") from None
        spans = merge_ranges(ranges)
        self.ranges = [(v, first, last) for v in (4, 6) for first, last in spans[v]]
        self._v4 = tuple(np.array(side, dtype=np.uint64) for side in _sides(spans[4]))
        self._v6 = tuple(np.array([_v6_key(x) for x in side], _V6_KEY) for side in _sides(spans[6]))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def contains(self, ips: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Boolean mask: which addresses fall inside the set (null or refused text: False)."""
        values = _dictionary(ips)
        n = len(values)
        if not self or n == 0:
            return np.zeros(n, dtype=bool)
        version, v4, v6 = _keys(values.dictionary)
        hit = np.zeros(len(version), dtype=bool)
        for fam, keys, (firsts, lasts) in ((4, v4, self._v4), (6, v6, self._v6)):
            sel = version == fam
            if len(firsts) and sel.any():
                hit[sel] = _in_spans(keys[sel], firsts, lasts)
        rows = values.indices.fill_null(0).to_numpy(zero_copy_only=False)
        out = hit[rows] if len(hit) else np.zeros(n, dtype=bool)
        if values.indices.null_count:
            out &= values.indices.is_valid().to_numpy(zero_copy_only=False)
        return out


def subnet_keys(ips: pa.Array) -> pa.Array:
    """The population subnet of each address: its /24 (IPv4) or /48 (IPv6), as CIDR text.

    Text the rules refuse keeps its own value (it is its own population)."""
    ips = pc.fill_null(ips, "")
    v4_keys = pc.replace_substring_regex(ips, r"\.\d{1,3}$", ".0/24")
    canonical = pc.match_substring_regex(ips, CANONICAL_IPV4)
    if pc.all(canonical).as_py() is not False:
        return v4_keys
    out = v4_keys.to_pylist()
    for i in np.flatnonzero(~canonical.to_numpy(zero_copy_only=False)):
        out[i] = _subnet_of(ips[i].as_py())
    return pa.array(out, pa.string())


def _subnet_of(text: str) -> str:
    try:
        version, value = parse_address(text)
    except AddressError:
        return text
    plen = 24 if version == 4 else 48
    return network_text(version, value >> (BITS[version] - plen) << (BITS[version] - plen), plen)
