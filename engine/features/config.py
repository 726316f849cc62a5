"""Feature-stage configuration: windows, lateness, client identity and pattern sources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The packaged pattern lists (an installed package is a folder on disk, so a plain Path works).
PATTERN_DIR = Path(str(resources.files("engine.data") / "patterns"))

# Page resources a browser fetches along with pages; not .txt/.xml/.json, which scanners probe.
DEFAULT_ASSET_EXTENSIONS = (
    ".css",
    ".js",
    ".mjs",
    ".map",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".ico",
    ".webp",
    ".avif",
    ".bmp",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".eot",
    ".mp4",
    ".webm",
    ".mp3",
    ".ogg",
    ".wav",
)
DEFAULT_LOGIN_PATHS = (
    "/login",
    "/signin",
    "/sign-in",
    "/wp-login.php",
    "/user/login",
    "/users/sign_in",
    "/account/login",
    "/accounts/login",
    "/auth/login",
    "/api/login",
    "/api/auth/login",
    "/api/v1/login",
    "/session",
    "/sessions",
    "/oauth/token",
    "/admin/login",
)
DEFAULT_HEALTH_PATHS = (
    "/health",
    "/healthz",
    "/healthcheck",
    "/health-check",
    "/ping",
    "/status",
    "/ready",
    "/readyz",
    "/livez",
    "/alive",
    "/heartbeat",
)


class FeatureConfig(BaseModel):
    """What the feature stage computes and how it tells clients apart.

    ``allowed_lateness_s``: the watermark is the newest event time seen minus this; a pane is
    final once the watermark passes its end. ``distinct_k``: size of the per-client bottom-k
    (KMV) sets — distinct counts are exact up to k and estimated beyond it.
    """

    model_config = ConfigDict(extra="forbid")

    windows_min: tuple[int, ...] = (1, 5, 15, 60)
    allowed_lateness_s: int = Field(default=120, ge=0)
    distinct_k: int = Field(default=16, ge=2, le=1024)
    entropy_buckets: int = Field(default=8, ge=2, le=64)
    trusted_proxies: list[str] = Field(default_factory=list)
    cloudfront_origin_cidrs: list[str] = Field(default_factory=list)
    # Published feeds (``engine.core.feeds``): CloudFront's ranges join the edge set above and
    # the trusted proxies of X-Forwarded-For; Googlebot's and Bingbot's networks join the
    # crawler networks file. ``feeds_dir`` None: $WAFSMITH_FEEDS_DIR or the user's data folder.
    cloudfront_feed: bool = True
    crawler_feeds: bool = True
    feeds_dir: Path | None = None
    # Path prefixes the site's robots.txt disallows: a crawler requesting them misbehaves by
    # its own standards (counted per client as robots_disallowed_hits).
    robots_disallow: list[str] = Field(default_factory=list)
    # IPv6 clients keyed by their network (64: one client per /64) instead of their address:
    # an attacker rotating addresses inside its /64 is one client, and decisions name the /64.
    # None keeps one client per address.
    ipv6_client_prefix: int | None = Field(default=None, ge=32, le=128)
    login_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_LOGIN_PATHS))
    login_fail_statuses: list[int] = Field(default_factory=lambda: [400, 401, 403, 422, 429])
    health_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_HEALTH_PATHS))
    asset_extensions: list[str] = Field(default_factory=lambda: list(DEFAULT_ASSET_EXTENSIONS))
    sensitive_paths_file: Path = PATTERN_DIR / "sensitive_paths.txt"
    injection_patterns_file: Path = PATTERN_DIR / "injection_patterns.txt"
    tool_user_agents_file: Path = PATTERN_DIR / "tool_user_agents.txt"
    crawler_networks_file: Path = PATTERN_DIR / "crawler_networks.txt"
    evidence_per_client: int = Field(default=3, ge=0, le=20)

    @field_validator("windows_min")
    @classmethod
    def _windows_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(w < 1 for w in value):
            raise ValueError("windows_min must be positive minutes")
        return tuple(sorted(set(value)))

    @property
    def longest_window(self) -> int:
        return max(self.windows_min)
