"""Benign populations: browsing sessions, NAT gateways, verified crawlers, API pollers and
health checkers. Browsing is sampled from the empirical profile learnt from real logs."""

from __future__ import annotations

import numpy as np

from engine.demo.simulator.stream import Profile, StreamBuilder

COUNTRIES = np.array(["US", "DE", "GB", "FR", "IN", "BR", "JP", "NL", "CA", "ES", "PL", "AU"])
COUNTRY_P = np.array([30, 10, 9, 7, 8, 7, 5, 5, 5, 5, 4, 5], dtype=float) / 100
API_AGENTS = ("okhttp/4.12.0", "python-requests/2.31.0", "Go-http-client/1.1", "axios/1.6.2")
API_ENDPOINTS = ("/api/v1/status", "/api/v1/orders", "/api/v1/inventory", "/api/v2/feed")
MONITOR_AGENTS = (
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Site24x7",
)
SESSION_PAGES_CAP = 40
FANOUT_CAP = 30


def country(rng: np.random.Generator) -> str:
    return str(COUNTRIES[rng.choice(len(COUNTRIES), p=COUNTRY_P)])


def browse_session(
    b: StreamBuilder, prof: Profile, ip: str, ua: str, ctry: str, start_ms: int, end_ms: int
) -> None:
    """One human browsing session: pages at empirical think times, each with its assets."""
    rng = b.rng
    k = int(min(rng.choice(prof.session_pages), SESSION_PAGES_CAP)) or 1
    think_ms = (rng.choice(prof.think_time_s, size=k) * 1000).astype(np.int64)
    think_ms[0] = 0
    page_t = start_ms + np.cumsum(think_ms)
    page_t = page_t[page_t < end_ms]
    if page_t.size == 0:
        return
    k = page_t.size
    pages = prof.pages.draw(rng, k)
    status = prof.page_status.draw(rng, k)
    url = np.array([f"https://{b.host}{p}" for p in pages], dtype=object)
    referer = np.empty(k, dtype=object)
    referer[0] = None
    referer[1:] = url[:-1]
    page_bytes = rng.choice(prof.page_bytes, size=k).astype(np.int64)
    method = np.where(rng.random(k) < 0.005, "HEAD", "GET").astype(object)
    b.add(
        ip,
        page_t,
        pages,
        status=status,
        ua=ua,
        country=ctry,
        referer=referer,
        bytes_out=page_bytes,
        method=method,
    )
    # assets: fetched shortly after each page, before the next one
    next_gap = np.append(np.diff(page_t), 60_000)
    fan = np.minimum(rng.choice(prof.asset_fanout, size=k), FANOUT_CAP)
    total = int(fan.sum())
    if total == 0:
        return
    owner = np.repeat(np.arange(k), fan)
    delay = rng.choice(prof.asset_delay_s, size=total) * 1000 + rng.integers(20, 900, total)
    delay = np.minimum(delay.astype(np.int64), (next_gap[owner] * 0.9).astype(np.int64))
    assets = prof.assets.draw(rng, total)
    b.add(
        ip,
        page_t[owner] + delay,
        assets,
        status=prof.asset_status.draw(rng, total),
        ua=ua,
        country=ctry,
        referer=url[owner],
        bytes_out=rng.choice(prof.asset_bytes, size=total).astype(np.int64),
    )


def browser(
    b: StreamBuilder,
    prof: Profile,
    ip: str,
    t0: int,
    t1: int,
    ua: str | None = None,
    ctry: str | None = None,
) -> None:
    """A browsing client: one or a few sessions over the run."""
    rng = b.rng
    ua = ua or str(prof.user_agents.draw(rng, 1)[0])
    ctry = ctry or country(rng)
    for _ in range(1 + int(rng.poisson(0.3))):
        start = int(rng.integers(t0 - 10 * 60_000, t1))  # sessions may be under way at t0
        browse_session(b, prof, ip, ua, ctry, start, t1)


def nat_gateway(b: StreamBuilder, prof: Profile, ip: str, users: int, t0: int, t1: int) -> None:
    """Many human users (each with their own browser) behind one address."""
    ctry = country(b.rng)
    for _ in range(users):
        browser(b, prof, ip, t0, t1, ctry=ctry)


def crawler(b: StreamBuilder, prof: Profile, ip: str, ua: str, t0: int, t1: int) -> None:
    """A verified search crawler: robots.txt first, then a steady broad walk of pages."""
    rng = b.rng
    rate = float(rng.uniform(0.15, 0.6))
    n = int(rng.poisson(rate * (t1 - t0) / 1000))
    times = np.sort(rng.integers(t0, t1, size=n + 1))
    idx = rng.integers(0, len(prof.pages.values), size=n + 1)
    paths = prof.pages.values[idx].copy()
    status = np.full(n + 1, 200)
    stale = rng.random(n + 1) < 0.03
    paths[stale] = np.array([p.rstrip("/") + "-old" for p in paths[stale]], dtype=object)
    status[stale] = 404
    assets = rng.random(n + 1) < 0.1
    paths[assets] = prof.assets.draw(rng, int(assets.sum()))
    paths[0], status[0] = "/robots.txt", 200
    b.add(
        ip,
        times,
        paths,
        status=status,
        ua=ua,
        country="US",
        bytes_out=rng.choice(prof.page_bytes, size=n + 1).astype(np.int64),
    )


def api_poller(b: StreamBuilder, ip: str, t0: int, t1: int) -> None:
    """A steady API client: one endpoint at a fixed period (2–30 s), tiny jitter."""
    rng = b.rng
    period = int(rng.choice([2_000, 5_000, 10_000, 30_000]))
    times = np.arange(t0 + int(rng.integers(0, period)), t1, period)
    times = times + rng.integers(-40, 40, size=times.size)
    endpoint = str(rng.choice(API_ENDPOINTS))
    ua = str(rng.choice(API_AGENTS))
    status = np.where(rng.random(times.size) < 0.01, 503, 200)
    b.add(
        ip,
        times,
        endpoint,
        query="format=json",
        status=status,
        ua=ua,
        country=country(rng),
        bytes_out=rng.integers(400, 4000, size=times.size),
    )


def health_checker(b: StreamBuilder, ip: str, ua: str, t0: int, t1: int) -> None:
    """An uptime monitor: HEAD or GET of one URL every 30 or 60 s."""
    rng = b.rng
    period = int(rng.choice([30_000, 60_000]))
    times = np.arange(t0 + int(rng.integers(0, period)), t1, period)
    method = "HEAD" if rng.random() < 0.5 else "GET"
    path = "/health" if rng.random() < 0.6 else "/"
    b.add(
        ip,
        times,
        path,
        method=method,
        status=200,
        ua=ua,
        country="US",
        bytes_out=rng.integers(150, 400, size=times.size),
    )
