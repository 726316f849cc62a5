"""Traffic as a web ACL logs it (no response status): browsing people and people logging in."""

from __future__ import annotations

from engine.schema import request as R
from tests.support.traffic import BROWSER_UAS, Traffic

WAF = dict(status=None, source=R.SOURCE_WAF)


def waf_background(tr: Traffic, n: int = 30, minutes: float = 20) -> Traffic:
    """Browsing people as a web ACL logs them: pages and assets, no status."""
    for i in range(n):
        ip, ua = f"198.51.100.{i + 1}", BROWSER_UAS[i % 40]
        for t in sorted(tr.rng.uniform(0, minutes * 60, 8)):
            tr.add(ip, t, f"/article/{int(tr.rng.integers(1, 500))}", ua=ua, **WAF)
            for j in range(int(tr.rng.integers(2, 5))):
                tr.add(ip, t + 0.2 + 0.1 * j, f"/static/app{j}.css", ua=ua, **WAF)
    return tr


def person_logs_in(tr: Traffic, ip: str, t0: float, attempts: int = 1) -> None:
    """The login page and its assets, then one (or a few mistyped) POSTs, then pages."""
    tr.add(ip, t0, "/login", **WAF)
    for j in range(3):
        tr.add(ip, t0 + 0.3 + 0.1 * j, f"/static/app{j}.css", **WAF)
    for k in range(attempts):
        tr.add(ip, t0 + 8 + 6 * k, "/login", method="POST", **WAF)
    tr.add(ip, t0 + 10 + 6 * attempts, "/account", **WAF)
