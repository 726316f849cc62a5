"""Pattern lists (sensitive paths, injection probes, tool and crawler user agents) and their
vectorized matchers. Every matcher runs on dictionary-unique values only; callers map the
result back to rows with the dictionary indices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.core.errors import ConfigError
from engine.core.feeds import CRAWLER_FEEDS, load_feed
from engine.core.netaddr import CidrSet
from engine.features.config import FeatureConfig

HEALTH_CHECK_AGENTS = (
    "elb-healthchecker",
    "kube-probe",
    "googlehc",
    "pingdom",
    "uptimerobot",
    "statuscake",
    "site24x7",
    "newrelicpinger",
    "datadog",
    "healthcheck",
    "consul health",
    "nagios",
)
# Percent-escapes decoded before injection matching (after one round of %25 → %).
_ESCAPES = {
    "%27": "'",
    "%22": '"',
    "%3c": "<",
    "%3e": ">",
    "%28": "(",
    "%29": ")",
    "%20": " ",
    "+": " ",
    "%2f": "/",
    "%5c": "\\",
    "%3b": ";",
    "%7c": "|",
    "%24": "$",
    "%60": "`",
    "%3d": "=",
    "%2d": "-",
    "%23": "#",
    "%7b": "{",
    "%7d": "}",
    "%3a": ":",
    "%40": "@",
    "%2c": ",",
    "%09": " ",
    "%0a": " ",
    "%0d": " ",
}


# A self-declared bot: a bot/crawler/spider token and a contact URL in its user agent
# ("AhrefsBot/7.0; +http://ahrefs.com/robot/"). Declaring is cheap: the gate that reads this
# also asks for polite conduct, and only published networks verify a search engine.
DECLARED_BOT_RE = r"(?:bot|crawler|spider|slurp)\b.*(?:https?://|@)|(?:https?://|@).*(?:bot|crawler|spider|slurp)\b"


def read_list(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a pattern file."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read pattern file {path}: {exc}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _alternation(literals: list[str]) -> str:
    return "|".join(re.escape(x.lower()) for x in literals)


@dataclass(frozen=True)
class Crawler:
    token: str
    networks: CidrSet


class Patterns:
    """Compiled pattern sets for one :class:`FeatureConfig`."""

    def __init__(self, cfg: FeatureConfig) -> None:
        sensitive = read_list(cfg.sensitive_paths_file)
        self.sensitive_re = f"(?:{_alternation(sensitive)})$"
        injections = read_list(cfg.injection_patterns_file)
        for pat in injections:
            try:
                re.compile(pat)
            except re.error as exc:
                raise ConfigError(f"bad injection pattern {pat!r}: {exc}") from None
        self.injection_re = "|".join(f"(?:{p})" for p in injections)
        self.tool_re = _alternation(read_list(cfg.tool_user_agents_file))
        self.health_ua_re = _alternation(list(HEALTH_CHECK_AGENTS))
        self.asset_re = f"(?:{_alternation(cfg.asset_extensions)})$"
        self.login_paths = pa.array(sorted({p.lower().rstrip("/") or "/" for p in cfg.login_paths}))
        self.health_paths = pa.array(sorted({p.lower() for p in cfg.health_paths}))
        by_token: dict[str, list[str]] = {}
        for line in read_list(cfg.crawler_networks_file):
            parts = line.split()
            if len(parts) != 2:
                raise ConfigError(f"{cfg.crawler_networks_file}: expected 'token CIDR': {line!r}")
            by_token.setdefault(parts[0].lower(), []).append(parts[1])
        if cfg.crawler_feeds:
            for kind, token in CRAWLER_FEEDS.items():
                by_token.setdefault(token, []).extend(load_feed(kind, cfg.feeds_dir).networks)
        self.crawlers = [Crawler(t, CidrSet(c)) for t, c in sorted(by_token.items())]
        self.crawler_re = _alternation([c.token for c in self.crawlers]) if self.crawlers else ""
        self.robots_disallow = sorted({p.lower() for p in cfg.robots_disallow if p})

    # --- matchers over unique values -------------------------------------------------------
    def sensitive(self, lower_paths: pa.Array) -> np.ndarray:
        return _np(pc.match_substring_regex(lower_paths, self.sensitive_re))

    def asset(self, lower_paths: pa.Array) -> np.ndarray:
        return _np(pc.match_substring_regex(lower_paths, self.asset_re))

    def injection(self, lower_targets: pa.Array) -> np.ndarray:
        if not self.injection_re:
            return np.zeros(len(lower_targets), dtype=bool)
        hits = _np(pc.match_substring_regex(lower_targets, self.injection_re))
        escaped = _np(pc.match_substring_regex(lower_targets, r"[%+]"))
        if escaped.any():  # decode only the values that carry escapes
            idx = np.flatnonzero(escaped)
            decoded = decode_escapes(pc.take(lower_targets, pa.array(idx)))
            hits[idx] |= _np(pc.match_substring_regex(decoded, self.injection_re))
        return hits

    def tool(self, lower_agents: pa.Array) -> np.ndarray:
        return _np(pc.match_substring_regex(lower_agents, self.tool_re))

    def health_agent(self, lower_agents: pa.Array) -> np.ndarray:
        return _np(pc.match_substring_regex(lower_agents, self.health_ua_re))

    def declared_bot(self, lower_agents: pa.Array) -> np.ndarray:
        return _np(pc.match_substring_regex(lower_agents, DECLARED_BOT_RE))

    def disallowed(self, lower_paths: pa.Array) -> np.ndarray:
        """Paths under one of the site's robots.txt Disallow prefixes."""
        out = np.zeros(len(lower_paths), dtype=bool)
        for prefix in self.robots_disallow:
            out |= _np(pc.starts_with(lower_paths, prefix))
        return out

    def crawler_agent(self, lower_agents: pa.Array) -> np.ndarray:
        """Index of the declared crawler per agent (−1 when it declares none)."""
        out = np.full(len(lower_agents), -1, dtype=np.int16)
        for i, crawler in enumerate(self.crawlers):
            hit = _np(pc.match_substring(lower_agents, crawler.token))
            out[hit & (out < 0)] = i
        return out

    def crawler_network(self, ips: pa.Array) -> np.ndarray:
        """(n_ips, n_crawlers) mask: which crawler's published networks hold each address."""
        out = np.zeros((len(ips), max(1, len(self.crawlers))), dtype=bool)
        for i, crawler in enumerate(self.crawlers):
            out[:, i] = crawler.networks.contains(ips)
        return out


def decode_escapes(values: pa.Array) -> pa.Array:
    """Lower-case text with common percent-escapes (and double encoding) decoded."""
    out = pc.replace_substring(values, "%25", "%")
    for esc, char in _ESCAPES.items():
        out = pc.replace_substring(out, esc, char)
    return out


def _np(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
