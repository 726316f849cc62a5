"""Network-aggregate populations (issue 11): CGNAT app fleets and IPv6 /56 sites.

Emitted by ``populations.add`` after the other second-wave populations, from the same
seeded generator, so streams without them are unchanged:

- ``cgnat_pool`` (benign): a carrier's public CGNAT addresses (a few per carrier /24, as
  real pools are contiguous public blocks; the 100.64.0.0/10 shared space never reaches a
  site's logs). Behind each, hundreds of phones run the site's app: open it (config and
  profile calls), then poll one feed endpoint at the app's fixed cadence while in the
  foreground. Each phone sends its own app user agent (app version, OS, device model), so
  one address carries many session-like sub-streams at a high total rate.
- ``ipv6_site56`` (benign): a home or office delegated a /56 (RFC 6177) with two to four
  /64s in use (main LAN, guest, IoT), each holding one to four browsing devices.
- ``ipv6_56_rotating_stuffing`` (attack): a credential stuffer owning a /56 that spreads its
  attempts over four to eight of its /64s, a fresh address for every attempt.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from engine.demo.simulator import benign
from engine.demo.simulator.addresses import RESIDENTIAL_FIRST, address_in_64
from engine.demo.simulator.config import SecondWave
from engine.demo.simulator.stream import Profile, StreamBuilder

APP = "ExampleShop"
APP_VERSIONS = ("5.11.2", "5.12.0", "5.12.1")
IOS = ("16.7.5", "17.2.1", "17.3", "17.4.1")
IPHONES = ("iPhone12,1", "iPhone13,2", "iPhone14,5", "iPhone15,2", "iPhone15,4", "iPhone16,1")
ANDROID = ("12", "13", "14")
DEVICES = ("Pixel 7", "Pixel 8", "SM-S911B", "SM-A546B", "M2101K6G", "CPH2449", "moto g54 5G")
APP_OPEN = ("/api/v2/config", "/api/v2/me")
FEED = "/api/v2/feed"
STUFFER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/121.0"


def app_agent(rng: np.random.Generator) -> str:
    """One phone's user agent for the site's app (iOS or Android, a version, a model)."""
    ver = str(rng.choice(APP_VERSIONS))
    if rng.random() < 0.45:
        return f"{APP}/{ver} (iOS {rng.choice(IOS)}; {rng.choice(IPHONES)}) CFNetwork/1490"
    device = f"Android {rng.choice(ANDROID)}; {rng.choice(DEVICES)}"
    return f"{APP}/{ver} (Linux; {device}) okhttp/4.12.0"


def add(
    b: StreamBuilder, prof: Profile, alloc, wave: SecondWave, t0: int, t1: int
) -> dict[str, tuple[str, str, str | None, int]]:
    """Emit the populations into ``b``; labels as in ``populations.add``."""
    who: dict[str, tuple[str, str, str | None, int]] = {}
    if wave.cgnat_addresses:
        who.update(_cgnat(b, alloc, wave, t0, t1))
    rng = b.rng
    for _ in range(wave.ipv6_site56s):
        for net in _64s_of_new_56(rng, alloc, int(rng.integers(2, 5))):
            for _device in range(int(rng.integers(1, 5))):
                ip = address_in_64(rng, net, alloc)
                benign.browser(b, prof, ip, t0, t1)
                who[ip] = ("benign", "ipv6_site56", None, 1)
    for n in range(wave.ipv6_56_rotators):
        nets = _64s_of_new_56(rng, alloc, int(rng.integers(4, 9)))
        cid = f"c92-ipv6_56_rotating_stuffing-{n}"
        s0 = int(rng.integers(t0, max(t0 + 1, t1 - 900_000)))
        attempts = int(rng.integers(200, 400))
        times = np.sort(rng.integers(s0, min(t1, s0 + 900_000), size=attempts))
        for t in times:  # every attempt from a fresh address in one of the /56's /64s
            ip = address_in_64(rng, nets[int(rng.integers(len(nets)))], alloc)
            b.add(ip, np.array([t]), np.array(["/login"], dtype=object), status=401,
                  method="POST", ua=STUFFER_UA, country="US")  # fmt: skip
            who[ip] = ("attack", "ipv6_56_rotating_stuffing", cid, 1)
    return who


def _cgnat(b: StreamBuilder, alloc, wave: SecondWave, t0: int, t1: int) -> dict:
    rng = b.rng
    who = {}
    per_24 = max(1, wave.cgnat_per_24)
    ips: list[str] = []
    while len(ips) < wave.cgnat_addresses:
        key = alloc._new_24(RESIDENTIAL_FIRST, exclusive=True)  # one carrier's pool block
        for _ in range(min(per_24, wave.cgnat_addresses - len(ips))):
            ips.append(alloc._host_in(key) or "")
    lo, hi = wave.cgnat_phones
    period = int(wave.cgnat_poll_s * 1000)  # the app's cadence, the same on every phone
    ctry = benign.country(rng)
    for ip in ips:
        phones = int(rng.integers(lo, hi + 1))
        for _phone in range(phones):
            _app_session(b, ip, app_agent(rng), ctry, period, t0, t1)
        who[ip] = ("benign", "cgnat_pool", None, phones)
    return who


def _app_session(
    b: StreamBuilder, ip: str, ua: str, ctry: str, period: int, t0: int, t1: int
) -> None:
    """One phone in the foreground: the app-open calls, then the feed every ``period``."""
    rng = b.rng
    start = int(rng.integers(t0 - 5 * 60_000, t1))
    stop = min(t1, start + int(rng.uniform(2, 20) * 60_000))
    polls = np.arange(start + 1_500, stop, period)
    polls = polls + rng.integers(-250, 250, size=polls.size)  # timers and radio wake-ups
    times = np.concatenate([[start, start + 400], polls])
    keep = (times >= t0) & (times < t1)
    if not keep.any():
        return
    paths = np.array([*APP_OPEN, *[FEED] * polls.size], dtype=object)
    n = times.size
    status = np.where(rng.random(n) < 0.01, 503, np.where(rng.random(n) < 0.3, 304, 200))
    b.add(ip, times[keep], paths[keep], status=status[keep], ua=ua, country=ctry,
          bytes_out=rng.integers(300, 6000, size=n)[keep])  # fmt: skip


def _64s_of_new_56(rng: np.random.Generator, alloc, count: int) -> list[int]:
    """``count`` distinct /64s (as integers) of a fresh /56 in 2a02:…/16."""
    while True:
        words = [0x2A02, int(rng.integers(0x0100, 0x8000)), int(rng.integers(0, 0x10000)),
                 int(rng.integers(0, 0x100)) << 8]  # fmt: skip
        net = int(ipaddress.IPv6Address(":".join(f"{w:x}" for w in words) + "::"))
        key = ("v6net56", net)
        if key not in alloc._used_ips:
            alloc._used_ips.add(key)
            break
    subnets = rng.choice(256, size=count, replace=False)
    out = []
    for s in subnets:
        sub = net | (int(s) << 64)
        alloc._used_ips.add(("v6net", sub))
        out.append(sub)
    return out
