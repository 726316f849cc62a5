"""A residential-proxy credential-stuffing scene for the rule-level answer tests: benign
shoppers (some of them logging in) and hundreds of proxy addresses across many networks,
each trying the login form twice — too spread and too short-lived to block by address."""

from __future__ import annotations

from tests.support.traffic import Traffic

MINUTES = 70
PROXIES = [f"100.{64 + i % 50}.{i // 50}.{(i * 37) % 250 + 1}" for i in range(300)]
SHOPPERS = [f"198.51.100.{i + 1}" for i in range(40)]


def residential_stuffing(seed: int = 21) -> Traffic:
    """Benign traffic for ``MINUTES`` minutes; the stuffing in its last twenty."""
    tr = Traffic(seed)
    for i, ip in enumerate(SHOPPERS):
        tr.browser(ip, 0, MINUTES * 60, pages=10)
        if i % 2 == 0:  # half of them log in once (a mistyped password first, for some)
            t = 60 + i * 90
            if i % 8 == 0:
                tr.add(ip, t - 20, "/login", method="POST", status=401)
            tr.add(ip, t, "/login", method="POST", status=302)
    start = (MINUTES - 20) * 60
    for j, ip in enumerate(PROXIES):
        for k in range(2):  # two attempts each, minutes apart
            tr.add(ip, start + (j * 3 + k * 300) % 900, "/login", method="POST", status=401,
                   ua="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0")  # fmt: skip
    return tr
