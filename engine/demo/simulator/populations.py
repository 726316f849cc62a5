"""Second-wave populations (issue 11), opt-in through ``SimConfig.second_wave``.

Added on top of a simulated stream with their own seeded generator, so the streams of
configs that leave them off are byte-identical to before:

- ``seo_crawler`` (benign): self-declared SEO / monitoring bots (AhrefsBot, DotBot, …) from
  hosting addresses: robots.txt first, then a broad, asset-free walk well under 1 request/s —
  a scraper's shape, politely.
- ``crawler_impersonator`` (attack): a search engine's user agent from outside its published
  networks, walking the site fast and probing a few sensitive paths.
- ``flash_crowd`` (benign): an e-mail campaign lands many new visitors on one landing page
  within minutes; each then browses like anyone.
- ``ipv6_household`` (benign): several devices browsing from one /64 (SLAAC privacy
  addresses); ``ipv6_mobile`` (benign): a phone whose address rotates inside its /64.
- ``ipv6_rotating_stuffing`` (attack): a credential stuffer sending every login attempt from
  a new address inside its /64 (one or two requests per address).

User agents: instances from monperrus/crawler-user-agents @ 7c7f9f2 (MIT), as in
``data/PROVENANCE.md``.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from engine.demo.simulator import benign, netagg
from engine.demo.simulator.addresses import address_in_64
from engine.demo.simulator.config import SecondWave
from engine.demo.simulator.stream import Profile, StreamBuilder

SEO_AGENTS = (
    "Mozilla/5.0 (compatible; AhrefsBot/6.1; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; DotBot/1.1; http://www.opensiteexplorer.org/dotbot, help@moz.com)",
    "Mozilla/5.0 (compatible; BLEXBot/1.0; +http://webmeup-crawler.com/)",
    "Mozilla/5.0 (compatible; DataForSeoBot/1.0; +https://dataforseo.com/dataforseo-bot)",
    "Mozilla/5.0 (compatible;PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
    "serpstatbot/1.0 (advanced backlink tracking bot; http://serpstatbot.com/; "
    "abuse@serpstatbot.com)",
)
IMPERSONATED = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PROBES = ("/.env", "/.git/config", "/wp-config.php.bak", "/backup.sql", "/phpinfo.php")


def add(
    b: StreamBuilder, prof: Profile, alloc, wave: SecondWave, t0: int, t1: int
) -> dict[str, tuple[str, str, str | None, int]]:
    """Emit the populations into ``b``; returns their labels (ip -> label, kind, campaign,
    users) in the simulator's form."""
    rng = b.rng
    who: dict[str, tuple[str, str, str | None, int]] = {}
    for i, ip in enumerate(alloc.spread(wave.seo_crawlers)):
        _polite_crawl(b, prof, ip, SEO_AGENTS[i % len(SEO_AGENTS)], t0, t1)
        who[ip] = ("benign", "seo_crawler", None, 1)
    for ip in alloc.spread(wave.impersonators):
        _impersonate(b, prof, ip, t0, t1)
        who[ip] = ("attack", "crawler_impersonator", "c90-crawler_impersonator", 1)
    if wave.flash_crowd:
        landing = f"/promo/spring-sale-{int(rng.integers(100, 999))}"
        start = t0 + int(wave.flash_crowd_start_min * 60_000)
        for ip in alloc.residential(wave.flash_crowd):
            arrive = start + int(rng.exponential(90_000))  # most within a few minutes
            if arrive >= t1:
                continue
            ua = str(prof.user_agents.draw(rng, 1)[0])
            b.add(ip, np.array([arrive]), np.array([landing], dtype=object), status=200,
                  ua=ua, country=benign.country(rng), referer=None)  # fmt: skip
            benign.browse_session(b, prof, ip, ua, benign.country(rng), arrive + 4_000, t1)
            who[ip] = ("benign", "flash_crowd", None, 1)
    for _ in range(wave.ipv6_households):
        net = _new_64(rng, alloc)
        for _device in range(int(rng.integers(2, 6))):
            ip = address_in_64(rng, net, alloc)
            benign.browser(b, prof, ip, t0, t1)
            who[ip] = ("benign", "ipv6_household", None, 1)
    for _ in range(wave.ipv6_mobiles):
        net = _new_64(rng, alloc)
        ua = str(prof.user_agents.draw(rng, 1)[0])
        for k in range(int(rng.integers(3, 8))):  # a new address every few minutes
            ip = address_in_64(rng, net, alloc)
            s = t0 + int(k * (t1 - t0) / 8 + rng.integers(0, 60_000))
            benign.browse_session(b, prof, ip, ua, "US", s, min(t1, s + 240_000))
            who[ip] = ("benign", "ipv6_mobile", None, 1)
    for n in range(wave.ipv6_rotators):
        net = _new_64(rng, alloc)
        cid = f"c91-ipv6_rotating_stuffing-{n}"
        s0 = int(rng.integers(t0, max(t0 + 1, t1 - 900_000)))
        attempts = int(rng.integers(200, 400))
        times = np.sort(rng.integers(s0, min(t1, s0 + 900_000), size=attempts))
        for t in times:  # every attempt from a fresh address of the /64
            ip = address_in_64(rng, net, alloc)
            b.add(ip, np.array([t]), np.array(["/login"], dtype=object), status=401,
                  method="POST", ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
                  country="US")  # fmt: skip
            who[ip] = ("attack", "ipv6_rotating_stuffing", cid, 1)
    who.update(netagg.add(b, prof, alloc, wave, t0, t1))  # CGNAT fleets, /56 sites
    return who


def _polite_crawl(b: StreamBuilder, prof: Profile, ip: str, ua: str, t0: int, t1: int) -> None:
    rng = b.rng
    rate = float(rng.uniform(0.1, 0.5))  # well under one request a second
    n = int(rng.poisson(rate * (t1 - t0) / 1000))
    times = np.sort(rng.integers(t0 + 1_000, t1, size=n))
    paths = prof.pages.draw(rng, n)
    status = np.where(rng.random(n) < 0.03, 404, 200)
    b.add(ip, np.concatenate([[t0 + int(rng.integers(0, 1000))], times]),
          np.concatenate([np.array(["/robots.txt"], dtype=object), paths]),
          status=np.concatenate([[200], status]), ua=ua, country="DE")  # fmt: skip


def _impersonate(b: StreamBuilder, prof: Profile, ip: str, t0: int, t1: int) -> None:
    rng = b.rng
    s0 = int(rng.integers(t0, max(t0 + 1, t1 - 600_000)))
    n = int(rng.integers(120, 400))
    times = np.sort(rng.integers(s0, min(t1, s0 + 600_000), size=n))
    paths = prof.pages.draw(rng, n)
    k = min(len(PROBES), n)
    paths[rng.choice(n, size=k, replace=False)] = np.array(PROBES[:k], dtype=object)
    status = np.array([404 if p in PROBES else 200 for p in paths])
    b.add(ip, times, paths, status=status, ua=IMPERSONATED, country="US")


def _new_64(rng: np.random.Generator, alloc) -> int:
    """A fresh /64 in 2a02:…/16 (as the simulator's other IPv6 clients), as an integer."""
    while True:
        words = [0x2A02, int(rng.integers(0x0100, 0x8000)), int(rng.integers(0, 0x10000)),
                 int(rng.integers(0, 0x10000))]  # fmt: skip
        net = int(ipaddress.IPv6Address(":".join(f"{w:x}" for w in words) + "::"))
        key = ("v6net", net)
        if key not in alloc._used_ips:
            alloc._used_ips.add(key)
            return net


