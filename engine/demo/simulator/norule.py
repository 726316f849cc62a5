"""Attacks no threshold rule targets, each beside a benign look-alike (issue 15).

Every attack here stays under the flood, scraper and stuffing thresholds; what gives it away
is *how* it behaves, which is what the anomaly model is for:

- ``bola_enumeration``: a logged-in API client walks object ids one by one
  (``/api/v1/orders/<id>``), mostly answered 403/404, a few a minute.
  Look-alike ``api_user``: a logged-in client reading its own few orders.
- ``cache_busting``: cacheable pages requested with a fresh random query each time, so every
  request misses the cache and reaches the origin; browser agent, no assets.
  Look-alike ``searcher``: a human typing searches (random queries on ``/search``).
- ``inventory_bot``: a headless browser that loads each product page *with* its assets, like a
  human, but metronome-regular, walking the product range.
  Look-alike ``shopper``: a human browsing many products with the same assets.
- ``account_takeover``: valid stolen credentials, one login after another, all successful.
  Look-alike ``relogin_user``: a human who logs in, out, and in again.
- ``slow_request``: few requests, each holding a worker for many seconds (only the timing
  fields show it). Look-alike ``report_user``: a human whose report pages are slow to build.
"""

from __future__ import annotations

import numpy as np

from engine.demo.simulator.benign import browse_session, country
from engine.demo.simulator.config import CampaignSpec
from engine.demo.simulator.stream import Profile, StreamBuilder

KINDS = ("bola_enumeration", "cache_busting", "inventory_bot", "account_takeover", "slow_request")
LOOKALIKES = {
    "bola_enumeration": "api_user",
    "cache_busting": "searcher",
    "inventory_bot": "shopper",
    "account_takeover": "relogin_user",
    "slow_request": "report_user",
}
APP_UA = "AcmeShop/5.4.1 (iPhone; iOS 17.2; Scale/3.00)"
HEADLESS_LIKE_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
PRODUCT_ASSETS = ("/static/css/shop.css", "/static/js/shop.js", "/static/img/logo.svg")
_ALNUM = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"), dtype=object)


def _token(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    letters = _ALNUM[rng.integers(0, len(_ALNUM), size=(n, length))]
    return np.array(["".join(r) for r in letters], dtype=object)


def emit(b: StreamBuilder, prof: Profile, spec: CampaignSpec, ip: str, t0: int, t1: int) -> None:
    """Requests of one no-rule attacker between t0 and t1."""
    rng = b.rng
    ctry = country(rng)
    rate = spec.rate_per_client
    k = spec.kind
    if k == "bola_enumeration":
        n = max(1, int(rng.poisson(rate * (t1 - t0) / 1000)))
        times = np.sort(rng.integers(t0, t1, size=n))
        ids = int(rng.integers(10_000, 90_000)) + np.cumsum(rng.choice([1, 1, 1, 2], size=n))
        status = rng.choice([403, 404, 200], size=n, p=[0.7, 0.2, 0.1])
        b.add(ip, times, np.array([f"/api/v1/orders/{i}" for i in ids], dtype=object),
              status=status, ua=APP_UA, country=ctry, bytes_out=np.where(status == 200, 2400, 180))
    elif k == "cache_busting":
        n = max(1, int(rng.poisson(rate * (t1 - t0) / 1000)))
        times = np.sort(rng.integers(t0, t1, size=n))
        pages = prof.pages.values[: 5]
        query = np.char.add(
            rng.choice(["cb=", "v=", "_="], size=n).astype(str), _token(rng, n, 10).astype(str)
        ).astype(object)
        b.add(ip, times, rng.choice(pages, size=n), query=query, status=200,
              ua=str(prof.user_agents.draw(rng, 1)[0]), country=ctry,
              bytes_out=rng.choice(prof.page_bytes, size=n).astype(np.int64))
    elif k == "inventory_bot":
        period = 1000.0 / rate  # one product page per period, to the millisecond
        starts = np.arange(t0 + rng.integers(0, 1000), t1, period).astype(np.int64)
        first = int(rng.integers(1000, 5000))
        _product_pages(b, ip, starts, first + np.arange(len(starts)), HEADLESS_LIKE_UA, ctry,
                       jitter_ms=rng.integers(0, 15, size=len(starts)))
    elif k == "account_takeover":
        n = max(1, int(rng.poisson(rate * (t1 - t0) / 1000)))
        times = np.sort(rng.integers(t0, t1, size=n))
        _logins(b, ip, times, ua=str(prof.user_agents.draw(rng, 1)[0]), ctry=ctry)
    elif k == "slow_request":
        n = max(1, int(rng.poisson(rate * (t1 - t0) / 1000)))
        times = np.sort(rng.integers(t0, t1, size=n))
        b.add(ip, times, rng.choice(["/api/v1/export", "/reports/annual"], size=n),
              method=rng.choice(["POST", "GET"], size=n), status=rng.choice([200, 504], size=n,
              p=[0.7, 0.3]), ua=str(prof.user_agents.draw(rng, 1)[0]), country=ctry,
              duration_ms=rng.uniform(20_000, 58_000, size=n).round(),
              bytes_in=rng.integers(20_000, 200_000, size=n))
    else:
        raise ValueError(f"not a no-rule attack kind: {k!r}")


def lookalike(b: StreamBuilder, prof: Profile, kind: str, ip: str, t0: int, t1: int) -> None:
    """A benign client that shares one trait with the attack ``kind`` imitates, among others a
    human has (sessions, assets, think times)."""
    rng = b.rng
    ctry = country(rng)
    ua = str(prof.user_agents.draw(rng, 1)[0])
    # like any benign population, present from the start (sessions may be under way at t0)
    start = int(rng.integers(t0 - 10 * 60_000, t1 - 5 * 60_000))
    browse_session(b, prof, ip, ua, ctry, max(start, t0), t1)
    if kind == "api_user":  # its own orders, a stale link or two
        n = int(rng.integers(8, 25))
        times = np.sort(rng.integers(max(start, t0), t1, size=n))
        own = rng.integers(10_000, 90_000, size=4)
        status = rng.choice([200, 404], size=n, p=[0.9, 0.1])
        b.add(ip, times, np.array([f"/api/v1/orders/{i}" for i in rng.choice(own, size=n)],
              dtype=object), status=status, ua=APP_UA, country=ctry)
    elif kind == "searcher":
        n = int(rng.integers(6, 25))
        times = np.sort(rng.integers(max(start, t0), t1, size=n))
        b.add(ip, times, "/search", query=np.char.add("q=", _token(rng, n, 6).astype(str))
              .astype(object), status=200, ua=ua, country=ctry)
    elif kind == "shopper":
        n = int(rng.integers(10, 30))
        gaps = rng.lognormal(np.log(25_000), 0.8, size=n)
        starts = (start + np.cumsum(gaps)).astype(np.int64)
        starts = starts[(starts >= t0) & (starts < t1)]
        _product_pages(b, ip, starts, rng.integers(1000, 5000, size=len(starts)), ua, ctry,
                       jitter_ms=rng.integers(0, 400, size=len(starts)))
    elif kind == "relogin_user":
        n = int(rng.integers(2, 4))
        _logins(b, ip, np.sort(rng.integers(max(start, t0), t1, size=n)), ua, ctry)
    elif kind == "report_user":
        n = int(rng.integers(2, 6))
        times = np.sort(rng.integers(max(start, t0), t1, size=n))
        b.add(ip, times, "/reports/annual", status=200, ua=ua, country=ctry,
              duration_ms=rng.uniform(2_000, 9_000, size=n).round())
    else:
        raise ValueError(f"not a look-alike kind: {kind!r}")


def _product_pages(b, ip, starts, product_ids, ua, ctry, jitter_ms) -> None:
    """A product page then its assets, as a browser loads them."""
    if not len(starts):
        return
    pages = np.array([f"/products/{int(i)}" for i in product_ids], dtype=object)
    b.add(ip, starts + jitter_ms, pages, status=200, ua=ua, country=ctry)
    for j, asset in enumerate(PRODUCT_ASSETS):
        b.add(ip, starts + jitter_ms + 150 + 60 * j, asset, status=200, ua=ua, country=ctry,
              referer=None)


def _logins(b, ip, times, ua, ctry) -> None:
    """Each login: the form, a successful POST (302), then the account page."""
    b.add(ip, times, "/login", status=200, ua=ua, country=ctry)
    b.add(ip, times + 4_000, "/login", method="POST", status=302, ua=ua, country=ctry,
          bytes_in=600)
    b.add(ip, times + 4_400, "/account", status=200, ua=ua, country=ctry)
